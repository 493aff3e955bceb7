using M3Train.Data;
using M3Train.Runtime;
using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Which in-batch columns are false negatives (issue 11): a passage whose text equals a row's positive must
/// not count as that row's negative. Pass <see cref="Mask"/> as <see cref="M3LossInput.ExcludeMask"/>; it then
/// applies to every in-batch loss, the ensemble loss and self-distillation.
/// </summary>
/// <remarks>
/// <para><b>Rule</b>: column j of row r is excluded iff j is not r's positive column and passage j's hash is one
/// of r's positive hashes: the positive in r's group, plus any other positives of r's data row given in
/// <c>positiveHashes</c>. This covers both cases of the issue: another query's passage identical to r's positive
/// (e.g. two queries sharing a positive), and a hard negative of r identical to its own positive. A passage equal
/// to the positive of some <i>other</i> query c is excluded from row c, not from the rows it is a negative of.</para>
/// <para><b>Layout</b>: passages in batch order <c>[q0 pos, q0 neg1..negG-1, q1 pos, ...]</c>; the mask is
/// [B, B·G] with in-batch negatives, [B, G] without. With cross-device negatives build it over the
/// global batch ([W·B, W·B·G]) and cut each rank's block with <see cref="LocalBlock"/>.</para>
/// </remarks>
/// <param name="Mask">Bool mask, true = exclude.</param>
/// <param name="MaskedColumns">Number of excluded (row, column) entries, for the metrics.</param>
public sealed record FalseNegativeMask(Tensor Mask, int MaskedColumns)
{
    /// <summary>Builds the mask from passage text hashes (<see cref="TextHash.Of"/>) in batch order.</summary>
    /// <param name="passageHashes">B·G hashes, group by group.</param>
    /// <param name="groupSize">G.</param>
    /// <param name="inBatchNegatives">False for the local [B, G] layout.</param>
    /// <param name="positiveHashes">Optional, per query: hashes of all its data row's positives (the sampled one is added anyway).</param>
    /// <param name="device">Where the mask goes; CPU when null.</param>
    public static FalseNegativeMask Build(IReadOnlyList<ulong> passageHashes, int groupSize, bool inBatchNegatives = true,
        IReadOnlyList<IReadOnlyCollection<ulong>>? positiveHashes = null, Device? device = null)
    {
        if (groupSize < 1 || passageHashes.Count % groupSize != 0)
            throw new ArgumentException($"{passageHashes.Count} passages do not split into groups of {groupSize}");
        int queries = passageHashes.Count / groupSize;
        if (positiveHashes is not null && positiveHashes.Count != queries)
            throw new ArgumentException($"positiveHashes has {positiveHashes.Count} entries for {queries} queries");
        int columns = inBatchNegatives ? queries * groupSize : groupSize;

        var mask = new bool[queries * columns];
        int masked = 0;
        for (int r = 0; r < queries; r++)
        {
            var positives = new HashSet<ulong> { passageHashes[r * groupSize] };
            if (positiveHashes is not null) positives.UnionWith(positiveHashes[r]);
            int firstPassage = inBatchNegatives ? 0 : r * groupSize;
            int positiveColumn = inBatchNegatives ? r * groupSize : 0;
            for (int j = 0; j < columns; j++)
            {
                if (j == positiveColumn || !positives.Contains(passageHashes[firstPassage + j])) continue;
                mask[r * columns + j] = true;
                masked++;
            }
        }
        using var host = tensor(mask, [queries, columns]);
        return new FalseNegativeMask(HostToDevice.Copy(host, device ?? CPU), masked);
    }

    /// <summary>Builds the mask from passage texts in batch order, hashing them with <see cref="TextHash.Of"/>.</summary>
    public static FalseNegativeMask Build(IReadOnlyList<string> passages, int groupSize, bool inBatchNegatives = true, Device? device = null) =>
        Build(passages.Select(TextHash.Of).ToArray(), groupSize, inBatchNegatives, positiveHashes: null, device);

    /// <summary>This rank's [B, B·G] block of a global [W·B, W·B·G] mask (or of any global score matrix).</summary>
    public static Tensor LocalBlock(Tensor global, int rank, int localQueries, int groupSize)
    {
        long b = localQueries, g = groupSize;
        if (global.dim() != 2 || global.shape[0] < (rank + 1) * b || global.shape[1] < (rank + 1) * b * g)
            throw new ArgumentException($"[{string.Join(", ", global.shape)}] has no block for rank {rank} with B = {b}, G = {g}");
        return global[TensorIndex.Slice(rank * b, (rank + 1) * b), TensorIndex.Slice(rank * b * g, (rank + 1) * b * g)]; // [B, B·G]
    }
}
