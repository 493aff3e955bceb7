using System.Net;
using System.Net.Sockets;
using M3Train.Distributed;
using TorchSharp;

namespace M3Train.Tests.Distributed;

/// <summary>
/// A job of W ranks inside the test process: one thread per rank, each with its own <see cref="DistributedContext"/>
/// (its own store connections and ring links on loopback), as separate processes would have.
/// </summary>
internal static class LocalJob
{
    public static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    public static LaunchEnvironment Environment(int rank, int world, int port, JobToken token, TimeSpan? timeout = null) => new()
    {
        Launcher = world == 1 ? Launcher.None : Launcher.M3Launch,
        Rank = rank, WorldSize = world, LocalRank = rank, LocalWorldSize = world,
        MasterAddress = "127.0.0.1", RendezvousPort = port, Token = token,
        Timeout = timeout ?? TimeSpan.FromSeconds(20), JoinTimeout = TimeSpan.FromSeconds(20),
    };

    /// <summary>Runs <paramref name="body"/> on every rank and returns each rank's result, or each rank's exception.</summary>
    public static (T? Result, Exception? Error)[] Run<T>(int world, Func<DistributedContext, T> body, TimeSpan? timeout = null, int? port = null)
    {
        var token = JobToken.Generate();
        int rendezvous = port ?? FreePort();
        var ranks = Enumerable.Range(0, world).Select(rank => Background.Run(() =>
        {
            using var context = DistributedContext.Start(Environment(rank, world, rendezvous, token, timeout), torch.CPU);
            try
            {
                var result = body(context);
                context.Finish();
                return result;
            }
            catch (Exception e)
            {
                context.Fail(e);
                throw;
            }
        })).ToList();
        return ranks.Select(r =>
        {
            try { return (r.Result(TimeSpan.FromSeconds(60)), (Exception?)null); }
            catch (TimeoutException) { throw; }
            catch (Exception e) { return (default(T), e); }
        }).ToArray();
    }

    /// <summary>Every rank's result; fails with the first rank's error if any rank failed.</summary>
    public static T[] Results<T>(int world, Func<DistributedContext, T> body, TimeSpan? timeout = null, int? port = null)
    {
        var outcomes = Run(world, body, timeout, port);
        if (outcomes.FirstOrDefault(o => o.Error != null).Error is { } error)
            throw new Xunit.Sdk.XunitException($"a rank failed: {error}");
        return outcomes.Select(o => o.Result!).ToArray();
    }
}
