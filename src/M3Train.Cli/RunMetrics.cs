using System.Text.Json;
using System.Text.Json.Nodes;
using M3Train.Training;

namespace M3Train.Cli;

/// <summary>The numeric series of a run's <c>metrics.jsonl</c>: per metric name, (step, value) in file order.</summary>
public sealed class RunMetrics
{
    RunMetrics(IReadOnlyDictionary<string, IReadOnlyList<(double Step, double Value)>> series) => Series = series;

    public IReadOnlyDictionary<string, IReadOnlyList<(double Step, double Value)>> Series { get; }

    /// <summary>
    /// The metrics of the run in <paramref name="folder"/>: its metrics.jsonl, or for a staged run (which has none) those
    /// of its stages under <c>stages/</c> one after another, each stage's steps counted on from where the one before
    /// ended, so the image shows the whole run.
    /// </summary>
    public static RunMetrics ReadRun(string folder)
    {
        string own = Path.Combine(folder, "metrics.jsonl"), stages = Path.Combine(folder, StagePlan.StagesFolder);
        if (File.Exists(own) || !Directory.Exists(stages)) return Read(own);
        var files = StagePlan.ExistingStageFolders(folder).Select(s => Path.Combine(s, "metrics.jsonl")).Where(File.Exists).ToList();
        if (files.Count == 0) throw new M3TrainException($"{stages}: no stage has logged a step yet (no stages/N-name/metrics.jsonl).");
        var series = new Dictionary<string, List<(double, double)>>(StringComparer.Ordinal);
        double offset = 0;
        foreach (string file in files) offset = Append(file, offset, series);
        return From(series, stages);
    }

    /// <summary>Reads <paramref name="path"/>; a line that is not a JSON object is an error naming it, lines without a step are skipped.</summary>
    public static RunMetrics Read(string path)
    {
        if (!File.Exists(path))
            throw new M3TrainException($"{path}: not found; plot takes a run folder (output_dir) that holds metrics.jsonl, or a staged run's folder (with stages/).");
        var series = new Dictionary<string, List<(double, double)>>(StringComparer.Ordinal);
        Append(path, 0, series);
        return From(series, path);
    }

    /// <summary>The metrics read from <paramref name="where"/>; an error when no step was logged there.</summary>
    static RunMetrics From(Dictionary<string, List<(double, double)>> series, string where) =>
        series.Count == 0
            ? throw new M3TrainException($"{where}: no logged steps to plot.")
            : new RunMetrics(series.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<(double, double)>)kv.Value));

    /// <summary>Adds the points of <paramref name="path"/> to <paramref name="series"/>, steps shifted by <paramref name="offset"/>; returns the last step so shifted.</summary>
    static double Append(string path, double offset, Dictionary<string, List<(double, double)>> series)
    {
        double last = offset;
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
            last = Math.Max(last, offset + step);
            foreach (var (name, value) in row)
                if (name != "step" && TryNumber(value, out double v) && double.IsFinite(v))
                {
                    if (!series.TryGetValue(name, out var points)) series[name] = points = [];
                    points.Add((offset + step, v));
                }
        }
        return last;
    }

    static bool TryNumber(JsonNode? node, out double value)
    {
        value = 0;
        return node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue(out value);
    }
}
