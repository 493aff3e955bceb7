using System.Globalization;
using System.Text;

namespace M3Train.Training;

/// <summary>What <see cref="BatchSizeProbe.Run"/> found, the config it wrote, and the table that shows it.</summary>
/// <param name="Device">The device probed, with its name (e.g. "cuda:0 (NVIDIA H100 80GB HBM3)").</param>
/// <param name="SubBatches">True when GradCache sub-batch sizes were probed at the configured batches.</param>
/// <param name="LimitBytes">The memory a step was allowed (device memory in use on CUDA, RSS on CPU).</param>
/// <param name="Limit">How the limit was derived, in words.</param>
public sealed record BatchProbeReport(string Device, bool SubBatches, long LimitBytes, string Limit,
    IReadOnlyList<BatchProbeRow> Rows, RunConfig ProbedConfig, string OutputPath)
{
    /// <summary>The table printed by <c>m3train probe-batch</c>: one line per bin.</summary>
    public string FormatTable()
    {
        var header = new List<string> { "bin", "tokens", "query", "passage", "batch" };
        if (SubBatches) header.Add("sub-batch");
        header.AddRange(["peak memory", "step time", "how"]);
        var lines = new List<string[]> { header.ToArray() };
        foreach (var r in Rows)
        {
            var cells = new List<string>
            {
                r.Bin.Index.ToString(CultureInfo.InvariantCulture), r.Bin.Range,
                r.Bin.QueryLength.ToString(CultureInfo.InvariantCulture), r.Bin.PassageLength.ToString(CultureInfo.InvariantCulture),
                r.Batch.ToString(CultureInfo.InvariantCulture),
            };
            if (SubBatches) cells.Add(r.SubBatch?.ToString(CultureInfo.InvariantCulture) ?? "");
            cells.Add(r.PeakBytes is long p ? Bytes(p) : "-");
            cells.Add(r.StepSeconds is double s ? s.ToString("0.000", CultureInfo.InvariantCulture) + " s" : "-");
            cells.Add(r.Evidence switch
            {
                ProbeEvidence.SameLengths => $"as bin {r.Bin.SameAs}",
                ProbeEvidence.NoRows => "no rows",
                _ => r.Evidence.ToString().ToLowerInvariant(),
            });
            lines.Add(cells.ToArray());
        }
        int[] widths = Enumerable.Range(0, header.Count).Select(c => lines.Max(l => l[c].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var line in lines)
            sb.Append(string.Join("  ", line.Select((cell, c) => c < 2 || c == line.Length - 1 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))).TrimEnd()).Append('\n');
        return sb.ToString();
    }

    public static string Bytes(long bytes) => bytes >= 1L << 30
        ? (bytes / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB"
        : (bytes / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB";
}
