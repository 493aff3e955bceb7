using System.Buffers.Binary;

namespace M3Train.Data;

/// <summary>
/// Checks a Parquet file's footer (its Thrift compact-protocol FileMetaData) before Parquet.Net decodes it: every
/// list, map and string must fit in the bytes that are left, and nesting stays shallow. Parquet.Net trusts those
/// counts, so one damaged count (2^31 column paths in a 1 KB footer) sent it round a read loop for good; here such
/// a file is an error naming it, found in time proportional to the footer's size.
/// </summary>
public static class ParquetFooter
{
    const int MaxDepth = 64;
    static ReadOnlySpan<byte> Magic => "PAR1"u8;

    /// <exception cref="M3TrainException">The file is not Parquet or its footer is damaged.</exception>
    public static void Check(string path)
    {
        byte[] footer;
        try
        {
            using var stream = File.OpenRead(path);
            long length = stream.Length;
            Span<byte> head = stackalloc byte[4], tail = stackalloc byte[8];
            if (length < 12 || stream.Read(head) != 4 || !head.SequenceEqual(Magic))
                throw Damaged(path, "it does not start with PAR1");
            stream.Position = length - 8;
            stream.ReadExactly(tail);
            uint size = BinaryPrimitives.ReadUInt32LittleEndian(tail);
            if (!tail[4..].SequenceEqual(Magic)) throw Damaged(path, "it does not end with PAR1");
            if (size == 0 || size > length - 12) throw Damaged(path, $"its footer claims {size} bytes of a {length}-byte file");
            footer = new byte[size];
            stream.Position = length - 8 - size;
            stream.ReadExactly(footer);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message})", e);
        }
        var reader = new CompactReader(footer, path);
        reader.SkipStruct(0);
    }

    static M3TrainException Damaged(string path, string problem) => new($"{path}: not a readable Parquet file ({problem})");

    /// <summary>Walks Thrift compact-protocol values without building them, checking each size against what is left.</summary>
    ref struct CompactReader(ReadOnlySpan<byte> data, string path)
    {
        readonly ReadOnlySpan<byte> _data = data;
        int _at;

        int Left => _data.Length - _at;

        public void SkipStruct(int depth)
        {
            if (depth > MaxDepth) throw Bad($"metadata nested more than {MaxDepth} levels deep");
            while (true)
            {
                byte header = Byte();
                int type = header & 0x0F;
                if (type == 0) return;
                if (header >> 4 == 0) VarInt();   // a field id that is not a small delta (its value does not matter here)
                SkipValue(type, depth, inList: false);
            }
        }

        void SkipValue(int type, int depth, bool inList)
        {
            switch (type)
            {
                case 1 or 2:                      // booleans: in the field header of a struct, a byte of their own in a list
                    if (inList) Byte();
                    break;
                case 3: Byte(); break;
                case 4 or 5 or 6: VarInt(); break;
                case 7: Skip(8); break;
                case 8: Skip(Count(VarInt(), 1, "a string")); break;   // sizes are plain unsigned varints
                case 9 or 10:
                {
                    byte header = Byte();
                    ulong size = header >> 4 == 15 ? VarInt() : (ulong)(header >> 4);
                    int element = header & 0x0F;
                    long count = Count(size, 1, "a list");
                    for (long i = 0; i < count; i++) SkipValue(element, depth + 1, inList: true);
                    break;
                }
                case 11:
                {
                    long count = Count(VarInt(), 2, "a map");
                    if (count == 0) break;
                    byte types = Byte();
                    for (long i = 0; i < count; i++)
                    {
                        SkipValue(types >> 4, depth + 1, inList: true);
                        SkipValue(types & 0x0F, depth + 1, inList: true);
                    }
                    break;
                }
                case 12: SkipStruct(depth + 1); break;
                default: throw Bad($"metadata holds an unknown value type {type}");
            }
        }

        /// <summary>Each element takes at least <paramref name="bytesEach"/> bytes, so a larger count cannot be real.</summary>
        long Count(ulong count, int bytesEach, string what) =>
            count <= (ulong)(Left / bytesEach) ? (long)count : throw Bad($"{what} of {count} elements in the {Left} bytes left of its metadata");

        /// <summary>A varint as stored: sizes read as they are; integers are zigzag-coded, which skipping need not undo.</summary>
        ulong VarInt()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                byte b = Byte();
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw Bad("an integer of its metadata does not end");
        }

        byte Byte()
        {
            if (Left < 1) throw Bad("its metadata ends early");
            return _data[_at++];
        }

        void Skip(long bytes)
        {
            if (bytes > Left) throw Bad("its metadata ends early");
            _at += (int)bytes;
        }

        readonly M3TrainException Bad(string problem) => Damaged(path, problem);
    }
}
