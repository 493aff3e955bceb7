using M3Train.Checkpoints;
using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

public class PrecisionTests
{
    [Theory]
    [InlineData(ComputePrecision.BFloat16, 2e-2)]
    [InlineData(ComputePrecision.Float16, 3e-3)]   // 10 mantissa bits against bf16's 7
    public void SixteenBitOutputsStayCloseToFloat32(ComputePrecision precision, double tolerance)
    {
        using var scope = NewDisposeScope();
        var golden = GoldenFolder.Tensors("m3_loss.safetensors");
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        var model = checkpoint.Model;
        model.eval();
        using var noGrad = no_grad();
        var ids = golden["p_input_ids"];
        var mask = golden["p_attention_mask"];
        var fp32 = model.Encode(ids, mask);
        var fp32Hidden = model.Backbone.Forward(ids, mask);
        model.Precision = precision;
        var bf16 = model.Encode(ids, mask);
        var bf16Hidden = model.Backbone.Forward(ids, mask);

        var diffs = new Dictionary<string, double>
        {
            ["last_hidden_state"] = MaxDiff(fp32Hidden, bf16Hidden),
            ["dense"] = MaxDiff(fp32.Dense, bf16.Dense),
            ["token weights"] = MaxDiff(fp32.TokenWeights!, bf16.TokenWeights!),
            ["colbert"] = MaxDiff(fp32.ColbertVectors!, bf16.ColbertVectors!),
        };
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", diffs.Select(kv => $"{kv.Key} {kv.Value:E2}")));
        Assert.All(new[] { bf16.Dense, bf16.TokenWeights!, bf16.ColbertVectors!, bf16Hidden }, t => Assert.Equal(ScalarType.Float32, t.dtype));
        Assert.All(diffs, kv => Assert.True(kv.Value <= tolerance, $"{kv.Key}: max |{precision} - fp32| = {kv.Value:E3}"));
    }

    [Theory]
    [InlineData(ComputePrecision.BFloat16)]
    [InlineData(ComputePrecision.Float16)]
    public void SixteenBitTrainingKeepsFloat32MasterWeightsAndGradients(ComputePrecision precision)
    {
        using var scope = NewDisposeScope();
        using var model = new M3Model(XlmRobertaConfig.Tiny()) { Precision = precision };
        model.train();
        var ids = tensor(new long[,] { { 0, 10, 11, 12, 2 }, { 0, 13, 2, 1, 1 } });
        var mask = ids.ne(1).to(ScalarType.Int64);
        var reps = model.Encode(ids, mask);
        var loss = (M3Scores.Dense(reps, reps) + M3Scores.Sparse(reps, reps) * 0.3 + M3Scores.Colbert(reps, reps)).sum();
        loss.backward();
        foreach (var (name, p) in model.named_parameters())
        {
            Assert.Equal(ScalarType.Float32, p.dtype);
            Assert.Equal(ScalarType.Float32, p.grad!.dtype);
            Assert.True(p.grad.isfinite().all().item<bool>(), name);
        }
    }

    static double MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();
}
