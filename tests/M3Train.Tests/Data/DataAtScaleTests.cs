using System.Globalization;
using M3Train.Data;
using M3Train.Tests.Distributed;
using M3Train.Tests.Training;
using M3Train.Config;
using M3Train.Training;
using Parquet;
using Parquet.Serialization;
using Xunit;

namespace M3Train.Tests.Data;

/// <summary>
/// Training data far larger than what a run may hold: a corpus of millions of rows and a Parquet file larger than
/// the memory the run may take train a few steps, and the run's resident memory grows with the rows only by the
/// memory-mapped row index. The corpora are generated here (never committed). <c>M3_SCALE_ROWS</c> ("1000000,5000000"
/// by default) sets the two JSONL sizes for a longer run by hand.
/// </summary>
[Trait("Category", "Slow")]
[Collection(HostMemoryCollection.Name)]
public sealed class DataAtScaleTests(ITestOutputHelper output) : IDisposable
{
    readonly DataTestFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    static readonly string[] Words = "river stone light paper window garden music winter yellow engine market silver doctor".Split(' ');

    static string Text(Random random, int words) => string.Join(' ', Enumerable.Range(0, words).Select(_ => Words[random.Next(Words.Length)]));

    /// <summary>Short fine-tuning rows, one negative each: written at a few million rows a second.</summary>
    string Corpus(int rows)
    {
        string path = Path.Combine(_folder.Path, $"corpus-{rows}", "pairs.jsonl");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var random = new Random(rows);
        using var writer = new StreamWriter(path);
        for (int i = 0; i < rows; i++)
            writer.Write($$"""{"query": "q{{i}} {{Text(random, 2)}}", "pos": ["{{Text(random, 1 + i % 7)}}"], "neg": ["{{Text(random, 2)}}"]}""" + "\n");
        return path;
    }

    /// <summary>A run of <paramref name="steps"/> steps of the tiny model on <paramref name="file"/>, its row index built on the way.</summary>
    static RunConfig Run(TinyRun run, string file, int steps = 3)
    {
        var config = run.Config(maxSteps: steps);
        return config with
        {
            Data = config.Data with { Files = [file], TrainGroupSize = 2, BatchSizes = [8], CacheTokenCounts = true, ShuffleInMemoryRows = 0, PrefetchBatches = 1 },
        };
    }

    /// <summary>
    /// Runs <c>m3train finetune</c> on <paramref name="file"/> (indexing it and training 3 steps) in a process of its
    /// own whose .NET heap may not grow past <paramref name="heapMiB"/>, and returns the peaks of its resident set's
    /// two parts (sampled every 20 ms), in MiB: anonymous memory (the .NET heap, libtorch's allocations), where rows
    /// held in memory would show, and file-backed memory, where the memory-mapped row index shows.
    /// </summary>
    (double Anonymous, double FileBacked) Train(string file, int heapMiB)
    {
        using var run = new TinyRun();
        string config = Path.Combine(_folder.Path, $"{Path.GetFileName(Path.GetDirectoryName(file))}.yaml");
        File.WriteAllText(config, ConfigWriter.ToYaml(Run(run, file)));
        using var training = new M3TrainRun(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = $"0x{heapMiB << 20:X}" }, "finetune", "--config", config);
        long anonymous = 0, fileBacked = 0;
        while (!training.HasExited)
        {
            anonymous = Math.Max(anonymous, StatusKb(training.Pid, "RssAnon"));
            fileBacked = Math.Max(fileBacked, StatusKb(training.Pid, "RssFile"));
            Thread.Sleep(20);
        }
        int code = training.WaitForExit(TimeSpan.FromSeconds(1));
        Assert.True(code == 0, training.Output);
        Assert.Contains("Indexed " + file, training.Output);
        return (anonymous / 1024.0, fileBacked / 1024.0);
    }

    [Fact]
    public void MillionsOfRowsTrainInMemoryThatGrowsOnlyByTheirMappedIndex()
    {
        // 5M rows held at 159 bytes each (before the row index) would need 760 MiB of heap: the runs get 192 MiB.
        const int heapMiB = 192;
        int[] sizes = (Environment.GetEnvironmentVariable("M3_SCALE_ROWS") ?? "1000000,5000000")
            .Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var peaks = new List<(double Anonymous, double FileBacked)>();
        foreach (int rows in sizes)
        {
            string path = Corpus(rows);
            var peak = Train(path, heapMiB);
            using var data = DataTestFolder.Load(new DataConfig { Files = [path], TrainGroupSize = 2, BatchSizes = [8] });
            double indexBytes = data.Files[0].IndexBytes;
            output.WriteLine($"{rows:N0} rows ({new FileInfo(path).Length / 1048576.0:F0} MiB of JSONL) indexed and trained 3 steps under a {heapMiB} MiB .NET heap: " +
                             $"peak anonymous resident set {peak.Anonymous:F0} MiB, file-backed {peak.FileBacked:F0} MiB; index {indexBytes / data.Files[0].RowCount:F2} bytes per row");
            Assert.InRange(indexBytes / data.Files[0].RowCount, 12, 12.01);
            peaks.Add(peak);
        }
        double PerRow(double first, double last) => (last - first) * 1048576 / (sizes[^1] - sizes[0]);
        double anonymousPerRow = PerRow(peaks[0].Anonymous, peaks[^1].Anonymous), filePerRow = PerRow(peaks[0].FileBacked, peaks[^1].FileBacked);
        output.WriteLine($"peak growth per added row: {anonymousPerRow:F1} bytes anonymous, {filePerRow:F1} bytes file-backed (the mapped index: 12; before it: 159 bytes of heap)");
        // What grows with the rows is the mapped index, shared through the page cache; the heap's peak moves with the
        // collector's timing by some MiB, far below what holding the rows (159 bytes each) would add.
        Assert.True(anonymousPerRow < 16, $"{anonymousPerRow:F1} bytes of anonymous memory per added row");
        Assert.True(filePerRow < 16, $"{filePerRow:F1} bytes of file-backed memory per added row");
    }

    [Fact]
    public async Task AParquetFileSeveralTimesLargerThanTheRunsHeapTrains()
    {
        const int heapMiB = 128, groupRows = 2000;
        string path = Path.Combine(_folder.Path, "parquet", "rows.parquet");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var random = new Random(2);
        for (int g = 0; g < 60; g++)
        {
            var rows = Enumerable.Range(0, groupRows).Select(i => new ParquetTestRow
            {
                Query = $"q{g}/{i} {Text(random, 3)}", Pos = [Text(random, 150 + random.Next(150))], Neg = [Text(random, 150 + random.Next(150))],
            }).ToList();
            var options = new ParquetOptions { CompressionMethod = CompressionMethod.None, RowGroupSize = groupRows, Append = g > 0 };
            await ParquetSerializer.SerializeAsync(rows, path, options, cancellationToken: TestContext.Current.CancellationToken);
        }
        double fileMiB = new FileInfo(path).Length / 1048576.0;
        Assert.True(fileMiB > 2 * heapMiB, $"the file is only {fileMiB:F0} MiB");

        // A process of its own, whose .NET heap may not grow past heapMiB: holding the file's rows would take twice its size.
        using var run = new TinyRun();
        string config = Path.Combine(_folder.Path, "parquet.yaml");
        File.WriteAllText(config, ConfigWriter.ToYaml(Run(run, path)));
        using var training = new M3TrainRun(new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = $"0x{heapMiB << 20:X}" }, "finetune", "--config", config);
        long peakKb = 0;
        while (!training.HasExited)
        {
            peakKb = Math.Max(peakKb, StatusKb(training.Pid, "VmHWM"));
            Thread.Sleep(200);
        }
        int code = training.WaitForExit(TimeSpan.FromSeconds(1));
        Assert.True(code == 0, training.Output);
        Assert.Contains("Indexed " + path, training.Output);
        output.WriteLine($"Parquet of {fileMiB:F0} MiB in row groups of {groupRows} rows: indexed and trained 3 steps under a {heapMiB} MiB .NET heap; " +
                         $"peak resident set {peakKb / 1024.0:F0} MiB (libtorch and the runtime included)");
    }

    /// <summary>A figure of a running process's /proc status in KiB (VmHWM, RssAnon, ...); 0 once it has gone.</summary>
    static long StatusKb(int pid, string field)
    {
        try
        {
            string? line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
