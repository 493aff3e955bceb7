using System.Buffers.Binary;

namespace M3Train.Data;

/// <summary>
/// A <see cref="RowInfo"/> in 12 bytes, as the row index stores it: 96 bits, little-endian.
/// <code>
/// bits  0-39  key: JSONL byte offset (files up to 1 TiB) or Parquet row number
/// bits 40-60  query tokens    (21 bits, capped at 2^21 - 1: above any maximum length, so binning is exact)
/// bits 61-81  passage tokens  (21 bits, capped likewise)
/// bits 82-91  negatives       (10 bits, capped at 1023: groups hold at most 1024 passages)
/// bit  92     teacher scores
/// bits 93-94  type rule
/// bit  95     unused (written 0, ignored)
/// </code>
/// Every bit pattern decodes to a row, so a record needs no check beyond its file's checksum; a key that points
/// outside its data file is found when the row is read.
/// </summary>
public static class PackedRow
{
    public const int Bytes = 12;
    public const long MaxKey = (1L << 40) - 1;
    public const int TokenCap = (1 << 21) - 1;
    public const int NegativesCap = 1023;

    public static void Write(Span<byte> destination, in RowInfo row)
    {
        if ((ulong)row.Key > MaxKey) throw new ArgumentOutOfRangeException(nameof(row), $"key {row.Key} does not fit in 40 bits");
        ulong query = (ulong)Math.Clamp(row.QueryTokens, 0, TokenCap), passage = (ulong)Math.Clamp(row.PassageTokens, 0, TokenCap);
        ulong low = (ulong)row.Key | query << 40 | passage << 61;
        uint high = (uint)(passage >> 3) | (uint)Math.Clamp(row.Negatives, 0, NegativesCap) << 18
                    | (row.HasScores ? 1u : 0u) << 28 | ((uint)row.TypeRule & 3) << 29;
        BinaryPrimitives.WriteUInt64LittleEndian(destination, low);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], high);
    }

    public static RowInfo Read(ReadOnlySpan<byte> source)
    {
        ulong low = BinaryPrimitives.ReadUInt64LittleEndian(source);
        uint high = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        return new RowInfo((long)(low & MaxKey), (int)(low >> 40) & TokenCap, Passage(low, high),
            (int)(high >> 18) & NegativesCap, (high >> 28 & 1) != 0, (RowTypeRule)(high >> 29 & 3));
    }

    /// <summary>Only the token counts: what binning reads for every row.</summary>
    public static (int Query, int Passage) ReadTokens(ReadOnlySpan<byte> source)
    {
        ulong low = BinaryPrimitives.ReadUInt64LittleEndian(source);
        uint high = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        return ((int)(low >> 40) & TokenCap, Passage(low, high));
    }

    static int Passage(ulong low, uint high) => (int)(low >> 61) | (int)(high & 0x3FFFF) << 3;
}
