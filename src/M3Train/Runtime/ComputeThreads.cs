using System.Runtime.InteropServices;
using Serilog;
using TorchSharp;

namespace M3Train.Runtime;

/// <summary>
/// How many CPU threads libtorch's operators use (intra-op), chosen so the process does not ask for more threads than
/// the machine has cores. libtorch's own default takes every core for each operator and keeps an inter-op pool beside
/// it; with a data-loader thread and other processes on the machine that oversubscribes the cores, and OpenMP's
/// spinning threads then wait on each other: on a loaded 2-core machine the quickstart took 2 minutes with 2 threads
/// against 10 seconds with 1.
/// <code>
/// intra-op = cores / ranks on this machine − inter-op (1) − busy host threads (the data loaders), at least 1
/// </code>
/// Data-parallel ranks on one machine (one process each) share its cores, so each takes its share of them.
/// </summary>
public static class ComputeThreads
{
    /// <summary>The inter-op pool's size: eager TorchSharp code runs one operator at a time, so one thread serves it.</summary>
    public const int InterOp = 1;

    static readonly object Gate = new();
    static bool _interOpSet;

    /// <summary>The cores this process may run on (its affinity and container limits included).</summary>
    public static int Cores => Environment.ProcessorCount;

    /// <summary>
    /// The default intra-op count beside <paramref name="hostThreads"/> busy host threads, for one of
    /// <paramref name="ranksOnMachine"/> processes sharing the cores.
    /// </summary>
    public static int Default(int hostThreads, int ranksOnMachine = 1) => Math.Max(1, Cores / Math.Max(1, ranksOnMachine) - InterOp - hostThreads);

    /// <summary>
    /// Sets libtorch's intra-op threads to <paramref name="requested"/> (or <see cref="Default"/> when null) and its
    /// inter-op pool to <see cref="InterOp"/> where it can still be set, and logs the choice.
    /// </summary>
    /// <param name="requested">The user's count (<c>--threads</c> / <c>train.threads</c>), or null.</param>
    /// <param name="hostThreads">Host threads that keep a core busy beside the operators (one per data loader).</param>
    /// <param name="source">Where the user sets it, for the log line (e.g. "train.threads").</param>
    /// <param name="ranksOnMachine">Data-parallel processes on this machine, this one included, that share its cores.</param>
    /// <returns>The intra-op count in use.</returns>
    public static int Apply(int? requested, int hostThreads, string source, int ranksOnMachine = 1)
    {
        if (requested is < 1) throw new M3TrainException($"{source} {requested}: must be at least 1.");
        int threads = requested ?? Default(hostThreads, ranksOnMachine);
        lock (Gate)
        {
            torch.set_num_threads(threads);
            // libtorch sizes the inter-op pool once, before its first parallel work; later calls are refused.
            if (!_interOpSet && torch.get_num_interop_threads() != InterOp)
            {
                try
                {
                    torch.set_num_interop_threads(InterOp);
                }
                catch (Exception e) when (e is ExternalException or InvalidOperationException or ArgumentException)
                {
                    Log.Debug("inter-op threads stay at {Threads}: {Reason}", torch.get_num_interop_threads(), e.Message);
                }
            }
            _interOpSet = true;
        }
        Log.Information("Threads: {Intra} intra-op ({How:l}), {Inter} inter-op, {Host} data loader(s), on {Cores} cores{Shared:l}",
            threads, requested is null ? $"default: cores{(ranksOnMachine > 1 ? " / ranks" : "")} - inter-op - loaders; {source} to change" : source,
            torch.get_num_interop_threads(), hostThreads, Cores, ranksOnMachine > 1 ? $" shared by {ranksOnMachine} ranks" : "");
        return threads;
    }
}
