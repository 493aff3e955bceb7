using System.Buffers.Binary;
using System.Text;

namespace M3Train.Distributed;

/// <summary>
/// One store request or reply, the payload of one frame. Every message has the same fields, so one parser
/// checks every length against the frame before reading:
/// <code>
/// request  op(u8)     key_len(u16) key(UTF-8) value_len(u32) value number(i64)
/// reply    status(u8) value_len(u32) value number(i64) text_len(u16) text(UTF-8)
/// </code>
/// <c>number</c> is the counter delta or value of Add and the timeout in milliseconds of Wait; a Fail request
/// carries its message as the value; <c>text</c> is the failure of a Failed reply or the reason of a Refused one.
/// </summary>
public readonly record struct StoreMessage(byte Kind, string Key, byte[] Value, long Number, string Text)
{
    public const int MaxKeyBytes = 1024;
    public const int MaxValueBytes = 1 << 20;
    public const int MaxTextBytes = 8192;

    /// <summary>Every valid frame fits in this, so anything longer is dropped unread.</summary>
    public const int MaxFrameBytes = 1 + 2 + MaxKeyBytes + 4 + MaxValueBytes + 8 + 2 + MaxTextBytes;

    public static StoreMessage Request(StoreOp op, string key = "", byte[]? value = null, long number = 0) =>
        new((byte)op, key, value ?? [], number, "");

    public static StoreMessage Reply(StoreStatus status, byte[]? value = null, long number = 0, string text = "") =>
        new((byte)status, "", value ?? [], number, text);

    public StoreOp Op => (StoreOp)Kind;
    public StoreStatus Status => (StoreStatus)Kind;

    public byte[] EncodeRequest()
    {
        byte[] key = Encoding.UTF8.GetBytes(Key);
        if (key.Length > MaxKeyBytes) throw new ArgumentException($"store key of {key.Length} bytes exceeds {MaxKeyBytes}");
        if (Value.Length > MaxValueBytes) throw new ArgumentException($"store value of {Value.Length} bytes exceeds {MaxValueBytes}");
        var buffer = new byte[1 + 2 + key.Length + 4 + Value.Length + 8];
        var span = buffer.AsSpan();
        span[0] = Kind;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], (ushort)key.Length);
        key.CopyTo(span[3..]);
        int at = 3 + key.Length;
        BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)Value.Length);
        Value.CopyTo(span[(at + 4)..]);
        BinaryPrimitives.WriteInt64LittleEndian(span[(at + 4 + Value.Length)..], Number);
        return buffer;
    }

    public byte[] EncodeReply()
    {
        // A UTF-16 character takes at most 3 UTF-8 bytes (a surrogate pair 4 for 2), so this many characters always fit.
        byte[] text = Encoding.UTF8.GetBytes(Text.Length > MaxTextBytes / 4 ? Text[..(MaxTextBytes / 4)] : Text);
        var buffer = new byte[1 + 4 + Value.Length + 8 + 2 + text.Length];
        var span = buffer.AsSpan();
        span[0] = Kind;
        BinaryPrimitives.WriteUInt32LittleEndian(span[1..], (uint)Value.Length);
        Value.CopyTo(span[5..]);
        int at = 5 + Value.Length;
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], Number);
        BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 8)..], (ushort)text.Length);
        text.CopyTo(span[(at + 10)..]);
        return buffer;
    }

    /// <summary>Parses a request frame; throws <see cref="InvalidDataException"/> on anything malformed.</summary>
    public static StoreMessage DecodeRequest(ReadOnlySpan<byte> frame)
    {
        var reader = new Reader(frame);
        byte op = reader.Byte();
        if (!Enum.IsDefined((StoreOp)op)) throw new InvalidDataException($"unknown store operation {op}");
        string key = reader.Text(reader.UInt16(), MaxKeyBytes);
        byte[] value = reader.Bytes(reader.UInt32(), MaxValueBytes);
        long number = reader.Int64();
        reader.End();
        return new StoreMessage(op, key, value, number, "");
    }

    public static StoreMessage DecodeReply(ReadOnlySpan<byte> frame)
    {
        var reader = new Reader(frame);
        byte status = reader.Byte();
        if (!Enum.IsDefined((StoreStatus)status)) throw new InvalidDataException($"unknown store reply {status}");
        byte[] value = reader.Bytes(reader.UInt32(), MaxValueBytes);
        long number = reader.Int64();
        string text = reader.Text(reader.UInt16(), MaxTextBytes);
        reader.End();
        return new StoreMessage(status, "", value, number, text);
    }

    ref struct Reader(ReadOnlySpan<byte> frame)
    {
        ReadOnlySpan<byte> _rest = frame;

        ReadOnlySpan<byte> Take(long count)
        {
            if (count > _rest.Length) throw new InvalidDataException("a field runs past the end of the frame");
            var taken = _rest[..(int)count];
            _rest = _rest[(int)count..];
            return taken;
        }

        public byte Byte() => Take(1)[0];
        public ushort UInt16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));
        public uint UInt32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
        public long Int64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

        public byte[] Bytes(uint count, int max) => count <= max
            ? Take(count).ToArray()
            : throw new InvalidDataException($"a field of {count} bytes exceeds its limit of {max}");

        public string Text(uint count, int max) => Encoding.UTF8.GetString(Bytes(count, max));

        public readonly void End()
        {
            if (_rest.Length != 0) throw new InvalidDataException($"{_rest.Length} bytes follow the last field");
        }
    }
}
