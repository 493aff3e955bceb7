using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// The requested parts of one batch's representations on the host, brought from the device in one copy (one
/// synchronization a batch, not one a text) and read row by row straight into the results. B texts, L tokens (the
/// padded length), D hidden, D' multi-vector size; one array holds dense [B, D], then token weights [B, L], then
/// multi-vectors [B, L-1, D'], each present only when requested.
/// </summary>
public sealed class HostRepresentations
{
    readonly float[] _data;
    readonly int _denseDim, _length, _colbertDim;
    readonly long _weightsAt, _colbertAt;

    HostRepresentations(float[] data, int rows, int denseDim, int length, int colbertDim, EncodingParts parts)
    {
        _data = data;
        _denseDim = denseDim;
        _length = length;
        _colbertDim = colbertDim;
        _weightsAt = parts.HasFlag(EncodingParts.Dense) ? (long)rows * denseDim : 0;
        _colbertAt = _weightsAt + (parts.HasFlag(EncodingParts.Lexical) ? (long)rows * length : 0);
    }

    /// <summary>Copies the <paramref name="parts"/> of <paramref name="reps"/> (encoded with at least those parts) to the host.</summary>
    public static HostRepresentations Copy(M3Representations reps, EncodingParts parts)
    {
        using var scope = NewDisposeScope();
        var flat = new List<Tensor>();
        if (parts.HasFlag(EncodingParts.Dense)) flat.Add(reps.Dense.flatten());
        if (parts.HasFlag(EncodingParts.Lexical)) flat.Add(reps.TokenWeights!.flatten());
        if (parts.HasFlag(EncodingParts.Colbert)) flat.Add(reps.ColbertVectors!.flatten());
        float[] data = flat.Count == 0 ? [] : cat(flat, 0).cpu().data<float>().ToArray(); // [B·D + B·L + B·(L-1)·D']
        return new HostRepresentations(data, (int)reps.Dense.shape[0], (int)reps.Dense.shape[1], (int)reps.Tokens,
            (int)(reps.ColbertVectors?.shape[2] ?? 0), parts);
    }

    /// <summary>Text <paramref name="row"/>'s dense vector [D].</summary>
    public ReadOnlySpan<float> Dense(int row) => _data.AsSpan((int)((long)row * _denseDim), _denseDim);

    /// <summary>The token weights of text <paramref name="row"/>'s first <paramref name="tokens"/> positions.</summary>
    public ReadOnlySpan<float> TokenWeights(int row, int tokens) => _data.AsSpan((int)(_weightsAt + (long)row * _length), tokens);

    /// <summary>Text <paramref name="row"/>'s first <paramref name="vectors"/> multi-vectors, row-major [vectors, D'].</summary>
    public ReadOnlySpan<float> Colbert(int row, int vectors) =>
        _data.AsSpan((int)(_colbertAt + (long)row * (_length - 1) * _colbertDim), vectors * _colbertDim);

    /// <summary>The multi-vector size D'.</summary>
    public int ColbertDim => _colbertDim;
}
