using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Losses;

/// <summary>
/// Where each query's passages sit in a score matrix S [R, C] built from groups of G passages
/// (1 positive, then G-1 negatives). Two layouts, told apart by C:
/// in-batch, C = R·G (row r's group is columns r·G .. r·G+G-1, its positive column r·G);
/// local, C = G (each row holds only its own group, positive column 0).
/// With R = 1 both read the same, so the shape alone is unambiguous.
/// </summary>
internal static class GroupLayout
{
    /// <summary>Throws unless <paramref name="scores"/> is [R, R·G] or [R, G].</summary>
    public static void Check(Tensor scores, int groupSize, string name)
    {
        if (groupSize < 1)
            throw new ArgumentOutOfRangeException(nameof(groupSize), groupSize, "group size must be at least 1");
        if (scores.dim() != 2)
            throw new ArgumentException($"{name}: expected a [rows, columns] score matrix, got [{string.Join(", ", scores.shape)}]");
        long rows = scores.shape[0], cols = scores.shape[1];
        if (cols != rows * groupSize && cols != groupSize)
            throw new ArgumentException($"{name}: [{rows}, {cols}] fits neither the in-batch layout [R, R·G] nor the local layout [R, G] with G = {groupSize}");
    }

    public static bool IsLocal(Tensor scores, int groupSize) => scores.shape[1] == groupSize;

    /// <summary>The positive column of every row: r·G in-batch, 0 local. [R] int64.</summary>
    public static Tensor PositiveColumns(Tensor scores, int groupSize)
    {
        long rows = scores.shape[0];
        return IsLocal(scores, groupSize)
            ? zeros(rows, dtype: ScalarType.Int64, device: scores.device)
            : arange(rows, dtype: ScalarType.Int64, device: scores.device) * groupSize;
    }

    /// <summary>The columns of every row's own group. [R, G] int64.</summary>
    public static Tensor GroupColumns(Tensor scores, int groupSize)
    {
        var offsets = arange(groupSize, dtype: ScalarType.Int64, device: scores.device).unsqueeze(0); // [1, G]
        return PositiveColumns(scores, groupSize).unsqueeze(1) + offsets;                              // [R, G]
    }

    /// <summary>Each row's own group: S[r, r·G + i] in-batch, S itself local. [R, G].</summary>
    public static Tensor LocalBlock(Tensor scores, int groupSize) =>
        IsLocal(scores, groupSize) ? scores : scores.gather(1, GroupColumns(scores, groupSize)); // [R, G]
}
