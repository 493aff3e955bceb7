using M3Train.Model;

namespace M3Train.Training.Benchmarks;

/// <summary>The model shapes <c>m3train bench --preset</c> accepts, with random weights.</summary>
public static class BenchPresets
{
    static readonly (string Name, Func<XlmRobertaConfig> Config)[] Table =
    [
        ("bge-m3", XlmRobertaConfig.BgeM3),
        ("large", XlmRobertaConfig.Large),
        ("base", XlmRobertaConfig.Base),
        ("tiny", XlmRobertaConfig.Tiny),
    ];

    public static IReadOnlyList<string> Names { get; } = [.. Table.Select(p => p.Name)];

    public static XlmRobertaConfig Config(string name) =>
        Table.FirstOrDefault(p => p.Name == name).Config?.Invoke()
        ?? throw new M3TrainException($"--preset {name}: expected one of {string.Join(", ", Names)}.");
}
