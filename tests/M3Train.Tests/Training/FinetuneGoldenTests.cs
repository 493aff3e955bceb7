using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>
/// FlagEmbedding's training loss and gradients (m3_loss.json / m3_loss.safetensors), recomputed end to end:
/// the stored token ids through the model, the scores, the unified loss, one backward pass. Cases, flags and
/// the gradients checked are all read from the fixture files.
/// </summary>
public class FinetuneGoldenTests
{
    static JsonNode Spec => JsonNode.Parse(File.ReadAllText(GoldenFolder.File("m3_loss.json")))!;

    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in Spec["cases"]!.AsObject()) data.Add(name);
        return data;
    }

    static EncodedBatch Batch(Tensor ids, Tensor mask) =>
        new(ids.data<long>().ToArray(), mask.data<long>().ToArray(), (int)ids.shape[0], (int)ids.shape[1]);

    [Theory]
    [MemberData(nameof(Cases))]
    public void LossAndGradientsMatchTheReference(string name)
    {
        var spec = Spec;
        var c = spec["cases"]![name]!;
        bool teacher = c["teacher"]!.GetValue<bool>(), noInBatch = c["no_in_batch"]!.GetValue<bool>(), distill = c["self_distill"]!.GetValue<bool>();
        int g = spec["group_size"]!.GetValue<int>();
        var t = GoldenFolder.Tensors("m3_loss.safetensors");

        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        var model = checkpoint.Model;
        model.train();
        float[]? scores = teacher ? spec["teacher_scores"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray() : null;
        var batch = new TrainBatch(0, 0, 0, "golden", 0, [], Batch(t["q_input_ids"], t["q_attention_mask"]),
            Batch(t["p_input_ids"], t["p_attention_mask"]), scores, g, noInBatch, null, null);

        var loss = new M3BatchLoss(new LossConfig
        {
            Temperature = spec["temperature"]!.GetValue<double>(),
            UseSelfDistill = distill,
            KnowledgeDistillation = teacher,
            SelfDistillStartStep = -1,
            MaskDuplicateNegatives = false,
        }, [M3Head.Dense, M3Head.Sparse, M3Head.Colbert]);
        var objective = new UnifiedFinetuneObjective(model, DataParallelGroup.Alone(CPU), loss, subBatchSize: null, seed: 0);
        var step = objective.Step(batch, new StepContext(1, MicroStep: 0));

        double expected = c["loss"]!.GetValue<double>();
        double got = step.Loss.item<float>();
        Assert.True(Math.Abs(got - expected) <= 1e-4 * Math.Abs(expected), $"{name}: loss {got} vs reference {expected}");

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        string prefix = $"{name}.grad.";
        int checkedGradients = 0;
        foreach (var (key, reference) in t.Where(kv => kv.Key.StartsWith(prefix, StringComparison.Ordinal)))
        {
            string param = key[prefix.Length..];
            Assert.True(parameters.ContainsKey(param), $"no parameter {param} for stored gradient {key}");
            var grad = parameters[param].grad;
            Assert.NotNull(grad);
            double scale = reference.abs().max().item<float>();
            double diff = (grad - reference).abs().max().item<float>();
            Assert.True(diff <= 1e-4 * scale, $"{key}: max |diff| {diff:E3} vs max |ref| {scale:E3}");
            checkedGradients++;
        }
        Assert.True(checkedGradients > 0, $"{name}: the fixture stores no gradients");
    }
}
