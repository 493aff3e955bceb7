using M3Train.Eval;
using M3Train.Tests.Data;

namespace M3Train.Tests.Eval;

/// <summary>The shipped tiny model (data/models/tiny-m3) and the shipped BEIR sample (data/beir-sample) for eval tests.</summary>
internal static class TinyInference
{
    public static string ModelDir => Path.Combine(DataTestFolder.RepoRoot, "data", "models", "tiny-m3");

    public static string Sample(string file) => Path.Combine(DataTestFolder.RepoRoot, "data", "beir-sample", file);

    public static string TrainFile(string file) => Path.Combine(DataTestFolder.RepoRoot, "data", "train", file);

    public static TorchM3Inference Load(int batchSize = 16) => TorchM3Inference.Load(ModelDir, TorchSharp.torch.CPU, batchSize);

    public static BeirDataset SampleSet() => BeirDataset.Load(Sample("corpus.jsonl"), Sample("queries.jsonl"), Sample("qrels.tsv"));
}
