using System.CommandLine;
using M3Train.Cli;
using M3Train.Cli.Verbs;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary>The launch and dist-check verbs' argument errors, in process (the runs themselves are in Distributed/MultiProcessTests).</summary>
public class LaunchCommandTests
{
    static string Error(params string[] args)
    {
        var error = new StringWriter();
        try
        {
            int code = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, Error = error, Output = new StringWriter() });
            Assert.NotEqual(0, code);
            return error.ToString();
        }
        catch (M3TrainException e)
        {
            return e.Message;
        }
    }

    [Fact]
    public void LaunchArgumentsThatCannotWorkAreRefusedBeforeAnyRankStarts()
    {
        string? token = Environment.GetEnvironmentVariable("M3_JOB_TOKEN");
        Environment.SetEnvironmentVariable("M3_JOB_TOKEN", null);
        try
        {
            Assert.Contains("--nproc-per-node", Error("launch", "--", "dist-check"));
            Assert.Contains("--nproc-per-node must be at least 1", Error("launch", "--nproc-per-node", "0", "--", "dist-check"));
            Assert.Contains("launch cannot launch itself", Error("launch", "--nproc-per-node", "2", "--", "launch", "--nproc-per-node", "2"));
            Assert.Contains("--node-rank 2 is not one of the 2 nodes", Error("launch", "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "--", "dist-check"));
            Assert.Contains("--master-addr is required with --nnodes > 1", Error("launch", "--nproc-per-node", "2", "--nnodes", "2", "--", "dist-check"));
            Assert.Contains("M3_JOB_TOKEN must be set, to the same value on every node",
                Error("launch", "--nproc-per-node", "2", "--nnodes", "2", "--master-addr", "10.0.0.1", "--", "dist-check"));
            Environment.SetEnvironmentVariable("M3_JOB_TOKEN", "short");
            Assert.Contains("M3_JOB_TOKEN is 5 characters long", Error("launch", "--nproc-per-node", "1", "--", "dist-check"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("M3_JOB_TOKEN", token);
        }
    }

    [Fact]
    public void DistCheckSizesTakeUnitsAndMustBeMultiplesOfFour()
    {
        Assert.Equal([4096L, 1L << 20, 64, 2L << 30], DistCheckCommand.ParseSizes("4K, 1M,64,2g"));
        Assert.Contains("'6' is not a size in bytes that is a positive multiple of 4", Assert.Throws<M3TrainException>(() => DistCheckCommand.ParseSizes("4K,6")).Message);
        Assert.Contains("'xM'", Assert.Throws<M3TrainException>(() => DistCheckCommand.ParseSizes("xM")).Message);
        Assert.Contains("--iterations must be at least 1", Error("dist-check", "--iterations", "0"));
    }
}
