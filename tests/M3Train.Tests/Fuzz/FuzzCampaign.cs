using System.Security.Cryptography;
using CsCheck;
using M3Train.Tests.Data;
using Xunit;

namespace M3Train.Tests.Fuzz;

/// <summary>
/// Runs one reader over hostile variants of a valid file and asserts the one allowed outcome: the reader returns,
/// or it throws the project's error with a message naming the file. Anything else (another exception, a hang) fails
/// the test, and the input is written to <c>TestResults/fuzz-failures/</c> (or <c>M3_FUZZ_FAILURES</c>), where the
/// next run of the test replays it before anything else.
/// </summary>
/// <remarks>
/// Seeded and bounded: the CI counts are small, <c>M3_FUZZ_ITERATIONS</c> sets another count for every reader for a
/// longer run, and <c>M3_FUZZ_SEED</c> another CsCheck seed; a failure's report carries its input's seed, so
/// <c>M3_FUZZ_SEED=that M3_FUZZ_ITERATIONS=1</c> makes exactly that input again. CsCheck then shrinks the failure.
/// </remarks>
internal sealed class FuzzCampaign(ITestOutputHelper output, string reader, string fileName)
{
    const string DefaultSeed = "0N0XIzNsQ0O2";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    public static string FailureFolder =>
        Environment.GetEnvironmentVariable("M3_FUZZ_FAILURES") is { Length: > 0 } folder ? folder : Path.Combine(DataTestFolder.RepoRoot, "TestResults", "fuzz-failures");

    static int Iterations(int ci) => int.TryParse(Environment.GetEnvironmentVariable("M3_FUZZ_ITERATIONS"), out int n) && n > 0 ? n : ci;

    static string Seed => Environment.GetEnvironmentVariable("M3_FUZZ_SEED") is { Length: > 0 } seed ? seed : DefaultSeed;

    /// <summary>Where each input is written before the reader sees it; a test may put other files beside it.</summary>
    public string Folder { get; } = Directory.CreateTempSubdirectory("m3-fuzz-").FullName;

    public string InputPath => Path.Combine(Folder, fileName);

    /// <summary>Other outcomes a reader documents (the tokenizer's InvalidDataException), besides M3TrainException naming the file.</summary>
    public Func<Exception, bool> AlsoAllowed { get; init; } = _ => false;

    /// <summary>Replays earlier failures, then reads <paramref name="ciIterations"/> variants of <paramref name="valid"/> made by <paramref name="edits"/>.</summary>
    public void Run(byte[] valid, Gen<Edit> edits, int ciIterations, Action<string> read)
    {
        var inputs = edits.Array[1, 4].Select(list =>
            (Bytes: list.Aggregate(valid, (bytes, e) => e.Apply(bytes)), Edits: string.Join("; ", list.Select(e => e.Description))));
        try
        {
            Assert.True(Check(valid, "the valid file itself", read), $"{reader}: the valid file was refused");
            foreach (string saved in SavedFailures())
                Check(File.ReadAllBytes(saved), $"replay of {saved}", read);
            // Each input comes from its own seed, drawn in turn from the run's seed, so a CI run is the same every time
            // and any one input can be made again from the seed in its report.
            var pcg = PCG.Parse(Seed);
            int accepted = 0, refused = 0;
            for (int i = Iterations(ciIterations); i > 0; i--)
            {
                string seed = pcg.ToString(pcg.State);
                var input = inputs.Generate(pcg, null!, out _);
                try
                {
                    if (Check(input.Bytes, $"{input.Edits} (seed {seed})", read)) accepted++;
                    else refused++;
                }
                catch (Xunit.Sdk.XunitException)
                {
                    Shrink(inputs, seed, read);
                    throw;
                }
            }
            output.WriteLine($"{reader}: {accepted + refused} inputs: {accepted} read, {refused} refused with an error naming the file (seed {Seed})");
        }
        finally
        {
            Directory.Delete(Folder, recursive: true);
        }
    }

    /// <summary>Lets CsCheck look for a smaller input that fails the same way, from the failing one's seed; its report names the seed.</summary>
    void Shrink(Gen<(byte[] Bytes, string Edits)> inputs, string seed, Action<string> read)
    {
        try
        {
            inputs.Sample(input => { Check(input.Bytes, input.Edits, read); }, seed: seed, iter: 100, threads: 1, print: input => input.Edits);
        }
        catch (Exception e)
        {
            output.WriteLine($"{reader}: smallest failing input CsCheck found: {e.Message}");
        }
    }

    /// <summary>True when the reader returned, false when it refused the input as it should; throws otherwise.</summary>
    bool Check(byte[] bytes, string description, Action<string> read)
    {
        File.WriteAllBytes(InputPath, bytes);
        Exception? failure;
        var task = Task.Run(() => read(InputPath));
        try
        {
            if (!task.Wait(Patience))
                failure = new TimeoutException($"no answer after {Patience.TotalSeconds} s");
            else
                return true;
        }
        catch (AggregateException e) when (e.InnerException is { } inner)
        {
            if (inner is M3TrainException m && m.Message.Contains(InputPath, StringComparison.Ordinal)) return false;
            if (AlsoAllowed(inner) && inner.Message.Contains(InputPath, StringComparison.Ordinal)) return false;
            failure = inner;
        }
        string saved = Save(bytes, description, failure);
        throw new Xunit.Sdk.XunitException($"{reader}: {description}: {failure.GetType().Name}: {failure.Message}\n(input saved as {saved})\n{failure}");
    }

    string Save(byte[] bytes, string description, Exception failure)
    {
        Directory.CreateDirectory(FailureFolder);
        string name = $"{reader}-{Convert.ToHexStringLower(SHA256.HashData(bytes))[..12]}{Path.GetExtension(fileName)}";
        string path = Path.Combine(FailureFolder, name);
        File.WriteAllBytes(path, bytes);
        File.WriteAllText(path + ".report", $"{reader} reading {fileName}\nedits: {description}\n{failure}\n");
        return path;
    }

    IEnumerable<string> SavedFailures() =>
        Directory.Exists(FailureFolder)
            ? Directory.EnumerateFiles(FailureFolder, $"{reader}-*").Where(f => !f.EndsWith(".report", StringComparison.Ordinal)).Order(StringComparer.Ordinal)
            : [];
}
