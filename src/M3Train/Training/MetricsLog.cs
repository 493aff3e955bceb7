using System.Globalization;
using System.Text.Json.Nodes;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// One JSON line per logged step in <c>RUN/metrics.jsonl</c>, and the same scalars as TensorBoard events in
/// <c>RUN/tensorboard</c>. On resume, lines after the resumed step (written before the interruption) are dropped,
/// so the file reads as one uninterrupted run.
/// </summary>
public sealed class MetricsLog : IDisposable
{
    readonly string _path;
    readonly SummaryWriter? _tensorboard;

    public MetricsLog(string runDirectory, bool tensorboard, int resumedFromStep = -1)
    {
        Directory.CreateDirectory(runDirectory);
        _path = Path.Combine(runDirectory, "metrics.jsonl");
        if (resumedFromStep >= 0 && File.Exists(_path))
        {
            var kept = File.ReadAllLines(_path).Where(l => StepOf(l) is int s && s <= resumedFromStep).ToList();
            File.WriteAllLines(_path, kept);
        }
        else if (resumedFromStep < 0 && File.Exists(_path))
            File.Delete(_path);
        if (tensorboard) _tensorboard = utils.tensorboard.SummaryWriter(Path.Combine(runDirectory, "tensorboard"));
    }

    static int? StepOf(string line)
    {
        try { return JsonNode.Parse(line)?["step"]?.GetValue<int>(); }
        catch (System.Text.Json.JsonException) { return null; }
    }

    public void Write(int step, IReadOnlyDictionary<string, double> values)
    {
        var obj = new JsonObject { ["step"] = step };
        foreach (var (k, v) in values)
            obj[k] = double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));
        File.AppendAllText(_path, obj.ToJsonString() + "\n");
        if (_tensorboard != null)
            foreach (var (k, v) in values)
                if (double.IsFinite(v)) _tensorboard.add_scalar($"train/{k}", (float)v, step);
    }

    public void Dispose() => (_tensorboard as IDisposable)?.Dispose();
}
