using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Tests.Data;
using M3Train.Tests.Training;
using Xunit;

namespace M3Train.Tests.Checkpoints;

/// <summary>
/// A hostile checkpoint is refused before the loader allocates what it claims: files of a few hundred bytes that
/// claim 40 GB tensors or a model with a billion-wide hidden state cost next to nothing.
/// </summary>
[Collection(HostMemoryCollection.Name)]
public sealed class UntrustedCheckpointMemoryTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>Far below what any of the claims would take, far above what reading a header and a config costs.</summary>
    const double LimitMiB = 64;

    readonly string _root = Directory.CreateTempSubdirectory("m3-untrusted-mem-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    string CopyTiny(string name)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    [Fact]
    public void AHeaderClaimingFortyGigabytesIsRefusedWithoutAllocatingThem()
    {
        HostPeak.RequireMeasurable();
        string folder = CopyTiny("forty");
        CraftedFiles.Safetensors(Path.Combine(folder, "model.safetensors"),
            """{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[10000000000],"data_offsets":[0,40000000000]}}""", new byte[700]);
        double mib = HostPeak.MiB(() => Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder)));
        output.WriteLine($"40 GB claim refused; peak grew {mib:F1} MiB");
        Assert.True(mib < LimitMiB, $"{mib:F1} MiB");
    }

    [Fact]
    public void AConfigAskingForAHugeModelIsRefusedBeforeItIsBuilt()
    {
        HostPeak.RequireMeasurable();
        string folder = CopyTiny("huge");
        string path = Path.Combine(folder, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        // Within every bound, but 65536 wide: 1502 x 65536 embeddings alone would be 394 MB, the layers 68 GB.
        config["hidden_size"] = 65536;
        config["intermediate_size"] = 65536;
        config["num_attention_heads"] = 4;
        File.WriteAllText(path, config.ToJsonString());
        double mib = HostPeak.MiB(() => Assert.Throws<M3TrainException>(() => M3Checkpoint.Load(folder, new M3CheckpointLoadOptions { AllowMissing = true, AllowUnexpected = true })));
        output.WriteLine($"65536-wide config over 32-wide weights refused; peak grew {mib:F1} MiB");
        Assert.True(mib < LimitMiB, $"{mib:F1} MiB");
    }
}
