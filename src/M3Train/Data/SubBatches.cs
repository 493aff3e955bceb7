using M3Train.Text;

namespace M3Train.Data;

/// <summary>
/// The texts of a batch cut into GradCache sub-batches, each padded to its own longest text.
/// </summary>
/// <param name="Pieces">The sub-batches, in the order they are encoded.</param>
/// <param name="Order">The batch row of each text across the pieces (piece 0's rows first); null: the batch's own order.</param>
public sealed record SubBatches(IReadOnlyList<EncodedBatch> Pieces, int[]? Order)
{
    /// <summary>
    /// Sorts the texts by token count before cutting, so each sub-batch holds texts of about one length: less
    /// padding, and more sub-batches with none, which the encoder runs without an attention mask. The sort is stable
    /// (equal lengths keep the batch order), so the cut depends on the texts only.
    /// </summary>
    public static SubBatches ByLength(int[][] ids, int size, int padToMultipleOf)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        int[] order = Enumerable.Range(0, ids.Length).OrderBy(i => ids[i].Length).ToArray();
        var pieces = order.Chunk(size).Select(rows => EncodedBatch.Pad(rows.Select(i => ids[i]).ToList(), padToMultipleOf)).ToList();
        return new SubBatches(pieces, order);
    }

    /// <summary>Share of the pieces that carry padding, hence an attention mask in every layer.</summary>
    public double MaskedShare => Pieces.Count == 0 ? 0 : (double)Pieces.Count(p => p.HasPadding()) / Pieces.Count;
}
