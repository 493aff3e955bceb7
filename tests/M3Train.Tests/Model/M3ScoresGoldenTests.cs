using System.Text.Json;
using M3Train.Checkpoints;
using M3Train.Model;
using M3Train.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

/// <summary>
/// Eval-mode representations and score matrices of m3_loss's stored batch (each query × every passage).
/// The fixture's <c>scores.*</c> are FlagEmbedding's <c>compute_*_score</c> outputs, which divide by the
/// temperature (m3_loss.json's <c>temperature</c>); the ensemble is dense + 0.3·sparse + colbert of those.
/// <see cref="M3Scores"/> returns raw scores, so they are compared after the same division.
/// </summary>
public class M3ScoresGoldenTests
{
    const double RelativeTolerance = 1e-4;

    [Fact]
    public void EvalScoresAndRepresentationsMatchFlagEmbedding()
    {
        using var scope = NewDisposeScope();
        var golden = GoldenFolder.Tensors("m3_loss.safetensors");
        using var json = JsonDocument.Parse(File.ReadAllText(GoldenFolder.File("m3_loss.json")));
        double temperature = json.RootElement.GetProperty("temperature").GetDouble();
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        var model = checkpoint.Model;
        model.eval();
        using var noGrad = no_grad();

        var q = model.Encode(golden["q_input_ids"], golden["q_attention_mask"]);
        var p = model.Encode(golden["p_input_ids"], golden["p_attention_mask"]);
        var dense = M3Scores.Dense(q, p);
        var sparse = M3Scores.Sparse(q, p);
        var colbert = M3Scores.Colbert(q, p);
        var scores = new Dictionary<string, Tensor>
        {
            ["dense"] = dense,
            ["sparse"] = sparse,
            ["colbert"] = colbert,
            ["ensemble"] = EnsembleScore.Compute(dense, sparse, colbert),
        };
        foreach (var (name, ours) in scores)
            AssertClose($"scores.{name}", ours / temperature, golden[$"scores.{name}"]);
        AssertClose("reps.q_dense", q.Dense, golden["reps.q_dense"]);
        AssertClose("reps.q_sparse", SparseEmbeddingReference.Of(q.InputIds!, q.TokenWeights!, checkpoint.Config.VocabSize), golden["reps.q_sparse"]);
    }

    static void AssertClose(string name, Tensor ours, Tensor theirs)
    {
        Assert.Equal(theirs.shape, ours.shape);
        double relative = ((ours - theirs).abs().max() / theirs.abs().max()).item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{name}: max |Δ| / max |ref| = {relative:E3}");
        Assert.True(relative <= RelativeTolerance, $"{name}: max |Δ| / max |ref| = {relative:E3}");
    }
}
