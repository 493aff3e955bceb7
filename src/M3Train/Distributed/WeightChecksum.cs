using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// Checks that every rank holds bit-identical weights (data parallelism keeps them so by applying identical
/// updates; a difference means a rank diverged): each rank hashes its tensors' dtypes, shapes and bytes, the
/// digests are all-gathered, and any rank whose digest differs from rank 0's is named.
/// </summary>
public static class WeightChecksum
{
    /// <summary>The first 8 bytes of the SHA-256 of the tensors, in order, read on the host.</summary>
    public static long Of(IEnumerable<Tensor> tensors)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var tensor in tensors)
        {
            using var host = tensor.detach().cpu().contiguous();
            hash.AppendData(Encoding.UTF8.GetBytes($"{host.dtype}[{string.Join(",", host.shape)}]"));
            Append(hash, TensorMemory.Address(host), TensorMemory.ByteCount(host));
        }
        return BinaryPrimitives.ReadInt64LittleEndian(hash.GetHashAndReset());
    }

    /// <summary>Throws naming the ranks whose <paramref name="tensors"/> differ from rank 0's; returns the digest they share.</summary>
    public static long Verify(ICollectives collectives, IEnumerable<Tensor> tensors, Device device)
    {
        long mine = Of(tensors);
        using var local = tensor(new[] { mine }, ScalarType.Int64, device);
        using var all = collectives.AllGather(local);
        using var onHost = all.cpu();
        long[] digests = onHost.data<long>().ToArray();
        var differing = Enumerable.Range(1, digests.Length - 1).Where(r => digests[r] != digests[0]).ToList();
        if (differing.Count > 0)
            throw new DistributedException(
                $"the weights differ across ranks: rank{(differing.Count > 1 ? "s" : "")} {string.Join(", ", differing)} " +
                $"hold{(differing.Count > 1 ? "" : "s")} other weights than rank 0 (digests {string.Join(", ", digests.Select(d => d.ToString("x16")))}); " +
                "every rank must apply the same gradients with the same optimizer settings.");
        return mine;
    }

    static unsafe void Append(IncrementalHash hash, nint address, long bytes)
    {
        for (long at = 0; at < bytes; at += 1 << 30)
            hash.AppendData(new ReadOnlySpan<byte>((byte*)address + at, (int)Math.Min(1 << 30, bytes - at)));
    }
}
