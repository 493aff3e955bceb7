using System.Text.Json;
using System.Text.Json.Nodes;

namespace M3Train.Cli;

/// <summary>The numeric series of a run's <c>metrics.jsonl</c>: per metric name, (step, value) in file order.</summary>
public sealed class RunMetrics
{
    RunMetrics(IReadOnlyDictionary<string, IReadOnlyList<(double Step, double Value)>> series) => Series = series;

    public IReadOnlyDictionary<string, IReadOnlyList<(double Step, double Value)>> Series { get; }

    /// <summary>Reads <paramref name="path"/>; a line that is not a JSON object is an error naming it, lines without a step are skipped.</summary>
    public static RunMetrics Read(string path)
    {
        if (!File.Exists(path)) throw new M3TrainException($"{path}: not found; plot takes a run folder (output_dir) that holds metrics.jsonl.");
        var series = new Dictionary<string, List<(double, double)>>(StringComparer.Ordinal);
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonObject row;
            try
            {
                row = JsonNode.Parse(text) as JsonObject ?? throw new M3TrainException($"{path}:{line}: expected a JSON object.");
            }
            catch (JsonException e)
            {
                throw new M3TrainException($"{path}:{line}: not valid JSON ({e.Message}).", e);
            }
            if (!TryNumber(row["step"], out double step)) continue;
            foreach (var (name, value) in row)
                if (name != "step" && TryNumber(value, out double v) && double.IsFinite(v))
                {
                    if (!series.TryGetValue(name, out var points)) series[name] = points = [];
                    points.Add((step, v));
                }
        }
        if (series.Count == 0) throw new M3TrainException($"{path}: no logged steps to plot.");
        return new RunMetrics(series.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<(double, double)>)kv.Value));
    }

    static bool TryNumber(JsonNode? node, out double value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value);
    }
}
