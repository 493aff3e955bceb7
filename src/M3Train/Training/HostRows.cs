using M3Train.Data;

namespace M3Train.Training;

/// <summary>
/// What the loss needs from a rank's slice of a global batch besides its embeddings, on the host: teacher scores
/// [B, G] (row-major) and the text hashes of the false-negative mask (B·G passage hashes, and each row's positives).
/// When the dense loss spans the global batch the ranks exchange these once per micro-batch: a few bytes per text,
/// so the texts themselves stay on the rank that read them.
/// </summary>
public sealed record HostRows(int Queries, float[]? TeacherScores, ulong[]? PassageHashes, ulong[][]? PositiveHashes)
{
    public static HostRows Of(TrainBatch batch) => new(batch.BatchSize, batch.TeacherScores, batch.PassageHashes, batch.PositiveHashes);

    public byte[] ToBytes()
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream))
        {
            w.Write(Queries);
            w.Write(TeacherScores is null ? -1 : TeacherScores.Length);
            foreach (float s in TeacherScores ?? []) w.Write(s);
            w.Write(PassageHashes is null ? -1 : PassageHashes.Length);
            foreach (ulong h in PassageHashes ?? []) w.Write(h);
            w.Write(PositiveHashes is null ? -1 : PositiveHashes.Length);
            foreach (var row in PositiveHashes ?? [])
            {
                w.Write(row.Length);
                foreach (ulong h in row) w.Write(h);
            }
        }
        return stream.ToArray();
    }

    /// <summary>Reads what <see cref="ToBytes"/> wrote (on another rank of the same job).</summary>
    public static HostRows FromBytes(byte[] bytes)
    {
        using var reader = new BinaryReader(new MemoryStream(bytes));
        int queries = reader.ReadInt32();
        var scores = Read(reader, r => r.ReadSingle());
        var passages = Read(reader, r => r.ReadUInt64());
        var positives = Read(reader, r => Read(r, h => h.ReadUInt64())!);
        return new HostRows(queries, scores, passages, positives);
    }

    static T[]? Read<T>(BinaryReader reader, Func<BinaryReader, T> item)
    {
        int count = reader.ReadInt32();
        if (count < 0) return null;
        var items = new T[count];
        for (int i = 0; i < count; i++) items[i] = item(reader);
        return items;
    }
}
