using M3Train.Distributed;
using M3Train.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// The devices a run's <c>train</c> section asks for and the processes that means: data parallelism runs one process
/// per device ("rank"), so <c>train.devices: [cuda:0, cuda:1]</c> (or <c>[cuda]</c>, every visible GPU) is two ranks on
/// this machine, each taking the entry of its local rank; <c>train.device</c> alone is one rank per launched process
/// (<c>cuda</c> then means the GPU of the rank's local rank).
/// </summary>
public static class RankDevices
{
    /// <summary>How many ranks <paramref name="train"/> asks for on one machine: the listed devices, or 1.</summary>
    public static int ProcessesFor(TrainConfig train)
    {
        if (train.Devices is ["cuda"])
        {
            int gpus = cuda.is_available() ? cuda.device_count() : 0;
            if (gpus == 0) TorchDevices.Resolve("cuda");
            return gpus;
        }
        return Math.Max(1, train.Devices.Count);
    }

    /// <summary>The device of the rank <paramref name="launch"/> describes.</summary>
    public static Device For(TrainConfig train, LaunchEnvironment launch)
    {
        if (train.Devices.Count == 0 || train.Devices is ["cuda"])
            return DistributedContext.DeviceFor(train.Devices.Count == 0 ? train.Device : "cuda", launch);
        if (train.Devices.Count == 1 && !launch.IsDistributed) return TorchDevices.Resolve(train.Devices[0]);
        int local = launch.LocalWorldSize ?? launch.WorldSize;
        if (!launch.IsDistributed || local != train.Devices.Count)
            throw new M3TrainException(
                $"train.devices lists {train.Devices.Count} devices ({string.Join(", ", train.Devices)}) but this machine runs " +
                $"{(launch.IsDistributed ? local : 1)} process{(launch.IsDistributed && local > 1 ? "es" : "")}: one process per device. " +
                "Start the run with m3train finetune/pretrain (which starts one per listed device), or with m3train launch, torchrun " +
                "or srun and as many processes per machine as devices listed (or train.devices: [cuda], each rank its own GPU).");
        return TorchDevices.Resolve(train.Devices[launch.LocalRank]);
    }
}
