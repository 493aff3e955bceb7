namespace M3Train.Runtime;

/// <summary>
/// One piece of long work that reports how far it is: a training run's steps, an evaluation's texts. The library only
/// reports; <see cref="Observer"/>, set once by the host program like Serilog's logger, decides how it is shown.
/// </summary>
public sealed class ProgressTask : IDisposable
{
    /// <summary>Where every task reports; null (the default) reports nowhere.</summary>
    public static IProgressObserver? Observer { get; set; }

    /// <param name="label">What is done, e.g. "finetune" or "encode corpus".</param>
    /// <param name="total">Units of the whole work (0: unknown).</param>
    /// <param name="unit">What one unit is: steps, texts, pairs.</param>
    public ProgressTask(string label, long total, string unit = "steps")
    {
        Label = label;
        Total = total;
        Unit = unit;
        Observer?.Started(this);
    }

    public string Label { get; }
    public long Total { get; }
    public string Unit { get; }

    /// <summary>Units done.</summary>
    public long Done { get; private set; }

    /// <summary>The latest figures to show beside the count (e.g. loss, lr), in order.</summary>
    public IReadOnlyList<(string Name, double Value)> Metrics { get; private set; } = [];

    /// <summary>A warning to show while it holds (e.g. a collapsing head), or null.</summary>
    public string? Alarm { get; private set; }

    /// <summary>Records that <paramref name="done"/> units are finished; <paramref name="metrics"/>, when given, replace the shown ones, as does <paramref name="alarm"/>.</summary>
    public void Update(long done, IReadOnlyList<(string Name, double Value)>? metrics = null, string? alarm = null)
    {
        Done = done;
        if (metrics is not null)
        {
            Metrics = metrics;
            Alarm = alarm;
        }
        Observer?.Updated(this);
    }

    public void Dispose() => Observer?.Ended(this);
}
