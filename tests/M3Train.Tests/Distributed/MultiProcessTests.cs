using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using M3Train.Distributed;
using Xunit;

namespace M3Train.Tests.Distributed;

/// <summary>Real processes: <c>m3train launch -- dist-check</c>, and ranks started by hand whose peer is SIGKILLed.</summary>
[Trait("Category", "Slow")]
public class MultiProcessTests : IDisposable
{
    const int SigKill = 9, SigTerm = 15, SigStop = 19;
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"m3-launch-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }

    static readonly Dictionary<string, string> NoVariables = [];

    static int PidOf(M3TrainRun launch, int rank) =>
        int.Parse(Regex.Match(launch.WaitForLine(l => l.StartsWith($"launch: rank {rank} is pid "), TimeSpan.FromSeconds(30)), @"pid (\d+)").Groups[1].Value);

    /// <summary>Two launched ranks all-reducing for two minutes, both joined; their pids.</summary>
    M3TrainRun SoakingLaunch(out int[] pids)
    {
        var launch = new M3TrainRun(NoVariables, "launch", "--nproc-per-node", "2", "--log-dir", Path.Combine(_folder, "logs"),
            "--", "dist-check", "--sizes", "4K", "--iterations", "1", "--soak", "120");
        pids = [PidOf(launch, 0), PidOf(launch, 1)];
        launch.WaitForLine(l => l.StartsWith("[rank 1] ") && l.Contains("tcp-ring"), TimeSpan.FromSeconds(30));
        return launch;
    }

    [Fact]
    public void LaunchRunsThreeRanksWhoseCollectivesAreCorrectAndIdentical()
    {
        string report = Path.Combine(_folder, "report.json");
        using var launch = new M3TrainRun(NoVariables, "launch", "--nproc-per-node", "3", "--log-dir", Path.Combine(_folder, "logs"),
            "--", "dist-check", "--sizes", "4K,5M", "--iterations", "2", "--output", report);
        Assert.True(launch.WaitForExit(TimeSpan.FromSeconds(120)) == 0, launch.Output);
        var json = JsonNode.Parse(File.ReadAllText(report))!;
        Assert.Equal(3, json["world_size"]!.GetValue<int>());
        Assert.Equal("tcp-ring", json["backend"]!.GetValue<string>());
        Assert.True(json["ok"]!.GetValue<bool>());
        var results = json["results"]!.AsArray();
        Assert.Equal(10, results.Count);
        Assert.All(results, r => Assert.True(r!["correct"]!.GetValue<bool>() && r["identical_across_ranks"]!.GetValue<bool>(), r.ToJsonString()));
        // Output lines carry their rank, and each rank has its own log.
        Assert.Contains("[rank 2] ", launch.Output);
        Assert.Contains("[rank 0] {", launch.Output);
        for (int r = 0; r < 3; r++)
            Assert.Contains($"rank {r} of 3", File.ReadAllText(Path.Combine(_folder, "logs", $"rank-{r}.log")));
        Assert.Contains("launch: all 3 ranks finished", launch.Output);
    }

    [Fact]
    public void WhenLaunchSeesARankKilledItStopsTheOthersAndNamesIt()
    {
        using var launch = SoakingLaunch(out int[] pids);
        int rank0 = pids[0], rank1 = pids[1];
        double killedAt = launch.Seconds;
        M3TrainRun.Signal(rank1, SigKill);
        int code = launch.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.True(launch.Seconds - killedAt < 60, $"took {launch.Seconds - killedAt:F1} s");
        Assert.Equal(137, code);
        Assert.Contains($"error: rank 1 (pid {rank1}) failed with exit code 137 (killed by SIGKILL)", launch.Output);
        Assert.False(M3TrainRun.IsAlive(rank0), "rank 0 outlived the launcher");
    }

    /// <summary>Two ranks started by hand, as torchrun would start them (no launcher helps them end), soaking for two minutes once this returns.</summary>
    static M3TrainRun[] HandStartedRanks(string timeoutSeconds = "45")
    {
        int port = LocalJob.FreePort();
        string token = JobToken.Generate().Value;
        var ranks = Enumerable.Range(0, 2).Select(rank => new M3TrainRun(new Dictionary<string, string>
        {
            ["RANK"] = $"{rank}", ["WORLD_SIZE"] = "2", ["LOCAL_RANK"] = $"{rank}", ["MASTER_ADDR"] = "127.0.0.1",
            ["MASTER_PORT"] = $"{port - 1}", ["M3_JOB_TOKEN"] = token, ["M3_DIST_TIMEOUT"] = timeoutSeconds,
        }, "dist-check", "--sizes", "64K", "--iterations", "1", "--soak", "120")).ToArray();
        foreach (var rank in ranks) rank.WaitForLine(l => l.Contains("dist-check: all-reducing"), TimeSpan.FromSeconds(60));
        return ranks;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void AKilledRankEndsItsPeerWithinAMinuteNamingIt(int killed)
    {
        var ranks = HandStartedRanks();
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        var survivor = ranks[1 - killed];
        double killedAt = survivor.Seconds;
        M3TrainRun.Signal(ranks[killed].Pid, SigKill);
        int code = survivor.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.True(survivor.Seconds - killedAt < 60, $"took {survivor.Seconds - killedAt:F1} s");
        Assert.NotEqual(0, code);
        Assert.Contains($"error: rank {killed} is gone", survivor.Output);
    }

    [Fact]
    public void AStoppedRankEndsItsPeerAfterTheTimeoutNamingIt()
    {
        var ranks = HandStartedRanks(timeoutSeconds: "3");
        using var rank0 = ranks[0];
        using var rank1 = ranks[1];
        double stoppedAt = rank0.Seconds;
        M3TrainRun.Signal(rank1.Pid, SigStop);
        Assert.NotEqual(0, rank0.WaitForExit(TimeSpan.FromSeconds(60)));
        Assert.InRange(rank0.Seconds - stoppedAt, 2.5, 30);
        Assert.True(Regex.IsMatch(rank0.Output, @"error: rank 0 failed: \w+ #\d+ \(.*\) timed out after 3 s: (no data came from rank 1|rank 1 took no data)"), rank0.Output);
    }

    [Fact]
    public void RanksWhoseLauncherIsKilledStopThemselves()
    {
        using var launch = SoakingLaunch(out int[] pids);
        M3TrainRun.Signal(launch.Pid, SigKill);
        Assert.True(TestStore.Eventually(() => pids.All(pid => !M3TrainRun.IsAlive(pid)), TimeSpan.FromSeconds(30)),
            "ranks outlived their launcher by 30 s");
    }

    [Fact]
    public void SigtermToLaunchReachesEveryRankOnce()
    {
        using var launch = SoakingLaunch(out int[] pids);
        M3TrainRun.Signal(launch.Pid, SigTerm);
        launch.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.Contains("launch: SIGTERM: passed on to every rank", launch.Output);
        Assert.Contains("launch: stopped on a signal", launch.Output);
        Assert.DoesNotContain("SIGKILL", launch.Output);
        Assert.All(pids, pid => Assert.False(M3TrainRun.IsAlive(pid), $"pid {pid} outlived the launcher"));
    }
}
