using M3Train.Model;

namespace M3Train.Training.Benchmarks;

/// <summary>The model shapes <c>m3train bench --preset</c> accepts, with random weights.</summary>
public static class BenchPresets
{
    public static IReadOnlyList<string> Names { get; } = ["bge-m3", "large", "base", "tiny"];

    public static XlmRobertaConfig Config(string name) => name switch
    {
        "bge-m3" => XlmRobertaConfig.BgeM3(),
        "large" => XlmRobertaConfig.Large(),
        "base" => XlmRobertaConfig.Base(),
        "tiny" => XlmRobertaConfig.Tiny(),
        _ => throw new M3TrainException($"--preset {name}: expected one of {string.Join(", ", Names)}."),
    };

    /// <summary>The longest text (tokens) a model of this shape takes: positions minus padding_idx + 1.</summary>
    public static int MaxTokens(XlmRobertaConfig config) => config.MaxPositionEmbeddings - config.PadTokenId - 1;
}
