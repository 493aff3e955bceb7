using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Distributed;

/// <summary>
/// The address of a tensor's first element (host memory for CPU tensors, device memory for CUDA ones), which
/// TorchSharp 0.107 does not expose: libtorch's <c>tensor.data_ptr()</c> through LibTorchSharp's own export,
/// found in the library TorchSharp itself loaded. Collectives read and write tensors in place through it.
/// </summary>
public static unsafe class TensorMemory
{
    static readonly Lazy<nint> DataExport = new(() =>
        NativeLibrary.GetExport(NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null), "THSTensor_data"));

    /// <summary>The first element's address; the tensor must be contiguous, as collectives move it as one block.</summary>
    public static nint Address(Tensor tensor)
    {
        if (!tensor.is_contiguous())
            throw new ArgumentException("collectives need a contiguous tensor (call .contiguous() first, or flatten into a bucket)");
        nint address = ((delegate* unmanaged<nint, nint>)DataExport.Value)(tensor.Handle);
        if (address == 0 && tensor.numel() > 0) throw new InvalidOperationException("libtorch returned no data pointer for the tensor");
        GC.KeepAlive(tensor);
        return address;
    }

    public static long ByteCount(Tensor tensor) => tensor.numel() * tensor.element_size();
}
