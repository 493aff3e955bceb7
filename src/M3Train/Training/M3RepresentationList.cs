using M3Train.Model;
using M3Train.Text;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// <see cref="M3Representations"/> as the flat tensor list <see cref="GradCache"/> caches, and the
/// concatenation of chunks that were padded to different lengths (sub-batches padded on their own):
/// shorter chunks are right-padded with what padding means for each tensor (weight 0, id &lt;pad&gt;,
/// zero vector, mask 0), which changes no score.
/// </summary>
public static class M3RepresentationList
{
    public static IReadOnlyList<Tensor> ToList(M3Representations r) => [r.Dense, r.TokenWeights, r.InputIds, r.ColbertVectors, r.ColbertMask];

    public static M3Representations FromList(IReadOnlyList<Tensor> t) => new(t[0], t[1], t[2], t[3], t[4]);

    public static M3Representations Concat(IReadOnlyList<M3Representations> chunks) =>
        chunks.Count == 1 ? chunks[0] : FromList(ConcatPadded(chunks.Select(ToList).ToList()));

    public static IReadOnlyList<Tensor> ConcatPadded(IReadOnlyList<IReadOnlyList<Tensor>> chunks)
    {
        long maxLength = chunks.Max(c => c[1].shape[1]);
        Tensor Cat(int index, double padValue) => cat(chunks.Select(c =>
        {
            var t = c[index];
            long missing = maxLength - (index == 3 || index == 4 ? t.shape[1] + 1 : t.shape[1]);
            if (missing == 0) return t;
            long[] pad = t.dim() == 3 ? [0, 0, 0, missing] : [0, missing];
            return nn.functional.pad(t, pad, value: padValue);
        }).ToList(), 0);
        return
        [
            cat(chunks.Select(c => c[0]).ToList(), 0),        // dense [N, D]
            Cat(1, 0),                                          // token weights [N, L]
            Cat(2, XlmrTokenizer.PadId),                        // ids [N, L]
            Cat(3, 0),                                          // colbert [N, L-1, D']
            Cat(4, 0),                                          // colbert mask [N, L-1]
        ];
    }
}
