using System.Runtime.CompilerServices;
using TorchSharp;

namespace M3Train.Tests;

static class TestSetup
{
    /// <summary>
    /// xunit runs test classes in parallel on a 2-core machine; libtorch's own thread pool on top of that
    /// oversubscribes the cores and its spinning threads slow every test many times over. Tiny models need
    /// no intra-op parallelism.
    /// </summary>
    [ModuleInitializer]
    internal static void OneTorchThread()
    {
        torch.set_num_threads(1);
        torch.set_num_interop_threads(1);
    }
}
