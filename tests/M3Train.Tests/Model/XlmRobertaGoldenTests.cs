using M3Train.Checkpoints;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

public class XlmRobertaGoldenTests
{
    public static TheoryData<string> Checkpoints() => new(GoldenFolder.CheckpointFolders());

    [Theory]
    [MemberData(nameof(Checkpoints))]
    public void LastHiddenStateMatchesTransformers(string folder)
    {
        using var scope = NewDisposeScope();
        var reference = GoldenFolder.Tensors("hidden_states.safetensors");
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.File(folder));
        var model = checkpoint.Model.Backbone;
        model.eval();
        using var noGrad = no_grad();
        var hidden = model.Forward(reference["input_ids"], reference["attention_mask"]);
        double maxDiff = (hidden - reference["last_hidden_state"]).abs().max().item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{folder}: last_hidden_state max |Δ| = {maxDiff:E3}");
        Assert.True(maxDiff <= 1e-5, $"{folder}: max |Δ| = {maxDiff:E3}");
    }
}
