using M3Train.Checkpoints;
using M3Train.Model;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Model;

public sealed class XlmRobertaModelTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3cfg-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void PositionIdsStartAfterThePaddingIndexAndPaddingKeepsIt()
    {
        using var ids = tensor(new long[,] { { 0, 9, 9, 2 }, { 0, 2, 1, 1 } });
        using var positions = XlmRobertaEmbeddings.PositionIds(ids, paddingIdx: 1);
        Assert.Equal(new long[] { 2, 3, 4, 5, 2, 3, 1, 1 }, positions.data<long>().ToArray());
    }

    /// <summary>An unpadded batch runs attention without a mask (the fast path); it must equal the masked path.</summary>
    [Fact]
    public void UnpaddedTextMatchesItsRowInAPaddedBatch()
    {
        using var scope = NewDisposeScope();
        var golden = GoldenFolder.Tensors("hidden_states.safetensors");
        using var checkpoint = M3Checkpoint.Load(GoldenFolder.ReferenceCheckpoint);
        var model = checkpoint.Model.Backbone;
        model.eval();
        using var noGrad = no_grad();
        var ids = golden["input_ids"];
        var mask = golden["attention_mask"];
        var batch = model.Forward(ids, mask);
        for (int i = 0; i < ids.shape[0]; i++)
        {
            int length = (int)mask[i].sum().item<long>();
            var alone = model.Forward(ids[i, ..length].unsqueeze(0), mask[i, ..length].unsqueeze(0));
            double diff = (alone[0] - batch[i, ..length]).abs().max().item<float>();
            Assert.True(diff <= 1e-5, $"text {i}: max |Δ| = {diff:E3}");
        }
    }

    [Fact]
    public void ConfigKeepsUnknownKeysOnSaveAndRejectsOtherActivations()
    {
        string source = Path.Combine(GoldenFolder.ReferenceCheckpoint, "config.json");
        var config = XlmRobertaConfig.Load(source);
        Assert.Equal(XlmRobertaConfig.Tiny().HiddenSize, config.HiddenSize);
        Assert.Contains("transformers_version", config.Extra.Keys);
        string saved = Path.Combine(_root, "config.json");
        config.Save(saved);
        var again = XlmRobertaConfig.Load(saved);
        Assert.Equal(config.Extra.Keys.Order(), again.Extra.Keys.Order());
        Assert.Equal(config with { Extra = again.Extra }, again);

        string relu = Path.Combine(_root, "relu.json");
        File.WriteAllText(relu, File.ReadAllText(source).Replace("\"gelu\"", "\"relu\""));
        var error = Assert.Throws<M3TrainException>(() => XlmRobertaConfig.Load(relu));
        Assert.Contains("hidden_act", error.Message);
        Assert.Contains(relu, error.Message);
    }

    [Fact]
    public void PresetsHaveTheirPublishedShapes()
    {
        var m3 = XlmRobertaConfig.BgeM3();
        Assert.Equal((250002, 1024, 24, 16, 4096, 8194), (m3.VocabSize, m3.HiddenSize, m3.NumHiddenLayers, m3.NumAttentionHeads, m3.IntermediateSize, m3.MaxPositionEmbeddings));
        Assert.Equal((768, 12, 514), (XlmRobertaConfig.Base().HiddenSize, XlmRobertaConfig.Base().NumHiddenLayers, XlmRobertaConfig.Base().MaxPositionEmbeddings));
        Assert.Equal((1024, 514), (XlmRobertaConfig.Large().HiddenSize, XlmRobertaConfig.Large().MaxPositionEmbeddings));
    }
}
