using M3Train.Distributed;
using Xunit;

namespace M3Train.Tests.Distributed;

public class LaunchEnvironmentTests
{
    const string Token = "0123456789abcdef0123";

    static LaunchEnvironment Resolve(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return LaunchEnvironment.Resolve(name => map.GetValueOrDefault(name));
    }

    static string Error(params (string, string)[] variables) => Assert.Throws<DistributedException>(() => Resolve(variables)).Message;

    [Fact]
    public void NoLauncherMeansOneProcess()
    {
        var env = Resolve(("PATH", "/usr/bin"));
        Assert.Equal(Launcher.None, env.Launcher);
        Assert.Equal((0, 1), (env.Rank, env.WorldSize));
        Assert.False(env.IsDistributed);
        Assert.Equal(LaunchEnvironment.DefaultTimeout, env.Timeout);
    }

    [Fact]
    public void TorchrunRanksRendezvousOneAboveTorchrunsOwnStore()
    {
        var env = Resolve(("RANK", "3"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "1"), ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "node0"), ("MASTER_PORT", "29500"), ("M3_JOB_TOKEN", Token));
        Assert.Equal(Launcher.Torchrun, env.Launcher);
        Assert.Equal((3, 8, 1, 2), (env.Rank, env.WorldSize, env.LocalRank, env.LocalWorldSize!.Value));
        Assert.Equal(2, env.RanksSharingCores);
        Assert.Equal(("node0", 29501), (env.MasterAddress, env.RendezvousPort));
        Assert.Equal(Token, env.Token!.Value);
    }

    [Fact]
    public void AnExplicitRendezvousPortWinsOverMasterPortPlusOne()
    {
        var env = Resolve(("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "29500"),
            ("M3_RDZV_PORT", "40000"), ("M3_JOB_TOKEN", Token));
        Assert.Equal(40000, env.RendezvousPort);
    }

    [Fact]
    public void TorchrunWithOneProcessNeedsNoTokenNorMaster()
    {
        var env = Resolve(("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"));
        Assert.Equal(Launcher.Torchrun, env.Launcher);
        Assert.False(env.IsDistributed);
        Assert.Null(env.Token);
    }

    [Fact]
    public void SlurmTasksFindRankZerosHostInTheStepsNodeList()
    {
        var env = Resolve(("SLURM_PROCID", "5"), ("SLURM_STEP_ID", "0"), ("SLURM_NTASKS", "8"), ("SLURM_LOCALID", "1"),
            ("SLURM_NTASKS_PER_NODE", "4"), ("SLURM_STEP_NODELIST", "gpu[07-08]"), ("SLURM_JOB_NODELIST", "gpu[01-09]"),
            ("SLURM_JOB_ID", "123456"), ("M3_JOB_TOKEN", Token));
        Assert.Equal(Launcher.Slurm, env.Launcher);
        Assert.Equal((5, 8, 1, 4), (env.Rank, env.WorldSize, env.LocalRank, env.LocalWorldSize!.Value));
        Assert.Equal(1, env.RanksSharingCores);
        Assert.Equal("gpu07", env.MasterAddress);
        Assert.Equal(LaunchEnvironment.SlurmPortBase + 3456, env.RendezvousPort);
    }

    [Fact]
    public void SlurmFallsBackToTheJobNodeListAndHonoursMasterVariables()
    {
        var fromJob = Resolve(("SLURM_PROCID", "0"), ("SLURM_STEP_ID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"),
            ("SLURM_JOB_NODELIST", "cpu[3-4]"), ("SLURM_JOB_ID", "7"), ("M3_JOB_TOKEN", Token));
        Assert.Equal(("cpu3", LaunchEnvironment.SlurmPortBase + 7), (fromJob.MasterAddress, fromJob.RendezvousPort));
        var explicitMaster = Resolve(("SLURM_PROCID", "0"), ("SLURM_STEP_ID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"),
            ("SLURM_JOB_NODELIST", "cpu[3-4]"), ("MASTER_ADDR", "10.0.0.9"), ("MASTER_PORT", "29400"), ("M3_JOB_TOKEN", Token));
        Assert.Equal(("10.0.0.9", 29401), (explicitMaster.MasterAddress, explicitMaster.RendezvousPort));
    }

    [Fact]
    public void ABatchScriptOutsideSrunIsOneProcess()
    {
        // sbatch's own shell has SLURM_PROCID=0 and SLURM_NTASKS=N but is no task of a step: it must not wait for N ranks.
        var env = Resolve(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4"), ("SLURM_LOCALID", "0"), ("SLURM_JOB_NODELIST", "a[1-4]"));
        Assert.Equal(Launcher.None, env.Launcher);
    }

    [Fact]
    public void M3LaunchVariablesWinOverTorchrunAndSlurm()
    {
        var env = Resolve(("M3_RANK", "1"), ("M3_WORLD_SIZE", "2"), ("M3_LOCAL_RANK", "1"), ("M3_LOCAL_WORLD_SIZE", "2"),
            ("M3_MASTER_ADDR", "127.0.0.1"), ("M3_RDZV_PORT", "31000"), ("M3_JOB_TOKEN", Token),
            ("RANK", "0"), ("WORLD_SIZE", "16"), ("SLURM_PROCID", "3"), ("SLURM_STEP_ID", "0"));
        Assert.Equal(Launcher.M3Launch, env.Launcher);
        Assert.Equal((1, 2, "127.0.0.1", 31000), (env.Rank, env.WorldSize, env.MasterAddress, env.RendezvousPort));
    }

    [Fact]
    public void TimeoutsComeFromTheirVariables()
    {
        var env = Resolve(("M3_DIST_TIMEOUT", "12.5"), ("M3_RDZV_TIMEOUT", "30"));
        Assert.Equal((TimeSpan.FromSeconds(12.5), TimeSpan.FromSeconds(30)), (env.Timeout, env.JoinTimeout));
        Assert.Contains("M3_DIST_TIMEOUT='soon'", Error(("M3_DIST_TIMEOUT", "soon")));
    }

    [Theory]
    [InlineData("RANK", "x")]
    [InlineData("RANK", "-1")]
    [InlineData("WORLD_SIZE", "0")]
    [InlineData("LOCAL_RANK", "1.5")]
    public void MalformedNumbersAreNamed(string name, string value)
    {
        var variables = new Dictionary<string, string>
        {
            ["RANK"] = "0", ["WORLD_SIZE"] = "2", ["LOCAL_RANK"] = "0", ["MASTER_ADDR"] = "h", ["MASTER_PORT"] = "1", ["M3_JOB_TOKEN"] = Token,
            [name] = value,
        };
        Assert.Contains($"{name}='{value}'", Error([.. variables.Select(kv => (kv.Key, kv.Value))]));
    }

    [Fact]
    public void InconsistentOrMissingValuesAreNamed()
    {
        Assert.Contains("RANK=2 is not below WORLD_SIZE=2",
            Error(("RANK", "2"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")));
        Assert.Contains("LOCAL_RANK=3 is not below LOCAL_WORLD_SIZE=2",
            Error(("RANK", "1"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "3"), ("LOCAL_WORLD_SIZE", "2")));
        Assert.Contains("LOCAL_RANK is not set",
            Error(("RANK", "1"), ("WORLD_SIZE", "4")));
        Assert.Contains("MASTER_ADDR is not set",
            Error(("RANK", "1"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("MASTER_PORT", "29500"), ("M3_JOB_TOKEN", Token)));
        Assert.Contains("MASTER_PORT is not set",
            Error(("RANK", "1"), ("WORLD_SIZE", "4"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "h")));
        Assert.Contains("SLURM_NTASKS is not set",
            Error(("SLURM_PROCID", "1"), ("SLURM_STEP_ID", "0"), ("SLURM_LOCALID", "0")));
        Assert.Contains("SLURM_STEP_NODELIST='gpu[1-'",
            Error(("SLURM_PROCID", "1"), ("SLURM_STEP_ID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"), ("SLURM_STEP_NODELIST", "gpu[1-")));
        Assert.Contains("leaves no port above it",
            Error(("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "65535"), ("M3_JOB_TOKEN", Token)));
    }

    [Fact]
    public void AMultiProcessRunWithoutAGoodTokenIsRefused()
    {
        string missing = Error(("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "29500"));
        Assert.Contains("M3_JOB_TOKEN is not set", missing);
        Assert.Contains("openssl rand", missing);
        string tooShort = Error(("RANK", "1"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "1"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "29500"), ("M3_JOB_TOKEN", "short"));
        Assert.Contains("M3_JOB_TOKEN is 5 characters long", tooShort);
    }

    [Fact]
    public void TheTokenNeverAppearsInTextForms()
    {
        var env = Resolve(("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "29500"), ("M3_JOB_TOKEN", Token));
        Assert.DoesNotContain(Token, env.ToString());
        Assert.DoesNotContain(Token, env.Token!.ToString());
        Assert.Contains("rank 0 of 2", env.ToString());
    }
}
