using System.Globalization;
using System.Xml.Linq;
using M3Train.Cli;
using SkiaSharp;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary><c>m3train plot</c> renders a run's metrics.jsonl into an image of the asked size with something drawn on it.</summary>
public sealed class PlotCommandTests : IDisposable
{
    readonly string _run = Directory.CreateTempSubdirectory("m3cli-plot-").FullName;

    public void Dispose() => Directory.Delete(_run, recursive: true);

    void WriteMetrics()
    {
        var lines = Enumerable.Range(1, 30).Select(i =>
        {
            int step = i * 5;
            string eval = step % 50 == 0 ? $", \"eval_ndcg@10\": {0.3 + step / 1000.0}" : "";
            return string.Create(CultureInfo.InvariantCulture,
                $"{{\"step\": {step}, \"loss\": {3.0 / i}, \"loss_dense\": {2.0 / i}, \"loss_sparse\": {2.5 / i}, \"lr\": {1e-5 * Math.Min(1, i / 3.0)}, \"dense_pos\": 0.8, \"dense_neg\": {0.5 - i / 100.0}, \"sparse_zero_share\": 0.1{eval}}}");
        });
        File.WriteAllLines(Path.Combine(_run, "metrics.jsonl"), lines);
    }

    [Fact]
    public void RendersAPngOfTheAskedSizeWithCurvesOnIt()
    {
        WriteMetrics();
        string png = Path.Combine(_run, "plot.png");
        var (code, error) = CliRun.Run("plot", _run, "--output", png, "--width", "640", "--height", "480");
        Assert.True(code == 0, error);

        using var bitmap = SKBitmap.Decode(png);
        Assert.Equal(640, bitmap.Width);
        Assert.Equal(480, bitmap.Height);
        var colors = new HashSet<SKColor>();
        for (int y = 0; y < bitmap.Height; y += 2)
            for (int x = 0; x < bitmap.Width; x += 2)
                colors.Add(bitmap.GetPixel(x, y));
        Assert.True(colors.Count > 20, $"{colors.Count} colors: the image looks empty");
    }

    [Fact]
    public void AStagedRunsStagesArePlottedOneAfterAnother()
    {
        // Stages are numbered from 1 in their folder names; "10-" sorts after "2-" as a number, not as text.
        foreach (var (folder, steps) in new[] { ("1-dense-warmup", 4), ("2-heads-warmup", 3), ("10-unified", 2) })
        {
            Directory.CreateDirectory(Path.Combine(_run, "stages", folder));
            File.WriteAllLines(Path.Combine(_run, "stages", folder, "metrics.jsonl"),
                Enumerable.Range(1, steps).Select(i => $"{{\"step\": {i}, \"loss\": {folder.Length + i}}}"));
        }

        var loss = RunMetrics.ReadRun(_run).Series["loss"];

        Assert.Equal([1.0, 2, 3, 4, 5, 6, 7, 8, 9], loss.Select(p => p.Step));
        Assert.Equal([15.0, 16, 17, 18, 15, 16, 17, 11, 12], loss.Select(p => p.Value));
        Assert.Equal(0, CliRun.Run("plot", _run).ExitCode);
        Assert.True(File.Exists(Path.Combine(_run, "metrics.png")));
    }

    [Fact]
    public void WritesSvgWhenAsked()
    {
        WriteMetrics();
        string svg = Path.Combine(_run, "plot.svg");
        Assert.Equal(0, CliRun.Run("plot", _run, "--output", svg, "--width", "800", "--height", "600").ExitCode);
        var root = XDocument.Load(svg).Root!;
        Assert.Equal("svg", root.Name.LocalName);
        Assert.Equal("800", root.Attribute("width")?.Value);
        Assert.Equal("600", root.Attribute("height")?.Value);
        Assert.True(root.Descendants().Count(e => e.Name.LocalName == "path") > 10);
    }

    [Fact]
    public void DefaultsToMetricsPngInTheRunFolder()
    {
        WriteMetrics();
        Assert.Equal(0, CliRun.Run("plot", _run).ExitCode);
        Assert.True(new FileInfo(Path.Combine(_run, "metrics.png")).Length > 1000);
    }

    [Fact]
    public void ABadMetricsLineIsNamed()
    {
        File.WriteAllLines(Path.Combine(_run, "metrics.jsonl"), ["{\"step\": 5, \"loss\": 1.0}", "{\"step\": 10, \"loss\""]);
        var (code, error) = CliRun.Run("plot", _run);
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"{Path.Combine(_run, "metrics.jsonl")}:2: not valid JSON", error);
    }
}
