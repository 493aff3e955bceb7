using System.Buffers.Binary;
using System.Text;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// Reads the <c>data.pkl</c> of a <c>torch.save</c> zip file as data, never as code: a small pickle machine that
/// knows only the opcodes <c>torch.save(state_dict)</c> writes and only the names it references
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch.*Storage</c>). Any other name
/// (<c>os.system</c>, a pickled module) is refused where it appears. The result is, per key, the tensor's storage
/// (dtype, archive key, element count), offset, shape and strides; no tensor is allocated here.
/// </summary>
/// <remarks>
/// Every value the machine creates costs at least one byte of input, and nothing recurses, so a hostile pickle of
/// N bytes takes O(N) memory and time and cannot overflow the stack.
/// </remarks>
internal static class StateDictPickle
{
    /// <summary>A storage of the archive: <c>data/Key</c> holds <see cref="Elements"/> values of <see cref="DType"/>.</summary>
    public sealed record Storage(ScalarType DType, string Key, long Elements);

    /// <summary>A tensor as <c>_rebuild_tensor_v2</c> describes it: a strided view of a storage.</summary>
    public sealed record View(Storage Storage, long Offset, long[] Shape, long[] Stride);

    sealed record Global(string Module, string Name)
    {
        public override string ToString() => $"{Module}.{Name}";
    }

    /// <summary>A pickled dict or OrderedDict, in insertion order.</summary>
    sealed class Dict
    {
        static readonly object NoneKey = new();
        readonly Dictionary<object, int> _index = [];

        public readonly List<(object? Key, object? Value)> Items = [];

        public void Set(object? key, object? value)
        {
            if (_index.TryGetValue(key ?? NoneKey, out int i))
                Items[i] = (key, value);
            else
            {
                _index[key ?? NoneKey] = Items.Count;
                Items.Add((key, value));
            }
        }
    }

    static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["DoubleStorage"] = ScalarType.Float64, ["FloatStorage"] = ScalarType.Float32, ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16, ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8, ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
    };

    /// <summary>The state dict of <paramref name="pickle"/>: its keys, in order, with their tensor views.</summary>
    /// <param name="source">Names the file in errors.</param>
    public static List<(string Key, View Tensor)> Read(ReadOnlySpan<byte> pickle, string source)
    {
        object? root = new Machine(source).Run(pickle);
        if (root is not Dict dict)
            throw new M3TrainException($"{source}: holds a pickled {Describe(root)}, not a state dict (a dict of tensors); save the model with torch.save(model.state_dict(), path).");
        var result = new List<(string, View)>();
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name || value is not View view)
                throw new M3TrainException($"{source}: entry '{key}' is a {Describe(value)}, not a tensor; a state dict maps names to tensors.");
            result.Add((name, view));
        }
        return result;
    }

    static string Describe(object? value) => value switch
    {
        null => "None",
        View => "tensor",
        Dict => "dict",
        string => "string",
        long or bool or double => value.GetType().Name.ToLowerInvariant(),
        object?[] => "tuple",
        List<object?> => "list",
        Global g => $"reference to {g}",
        _ => value.GetType().Name,
    };

    /// <summary>The opcodes of pickle protocols 2-4 that a state dict uses; <c>Op</c> names as in Python's pickletools.</summary>
    sealed class Machine(string source)
    {
        static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

        readonly List<object?> _stack = [];
        readonly List<int> _marks = [];
        readonly Dictionary<long, object?> _memo = [];
        int _at;

        public object? Run(ReadOnlySpan<byte> data)
        {
            _at = 0;
            while (true)
            {
                int opAt = _at;
                byte op = Byte(data);
                switch (op)
                {
                    case 0x80: Byte(data); break;                                            // PROTO
                    case 0x95: Bytes(data, 8); break;                                        // FRAME
                    case (byte)'.':                                                          // STOP
                        if (_stack.Count != 1) throw Bad(opAt, $"ends with {_stack.Count} values on the stack instead of 1");
                        return _stack[0];
                    case (byte)'(': _marks.Add(_stack.Count); break;                        // MARK
                    case (byte)'N': Push(null); break;                                      // NONE
                    case 0x88: Push(true); break;                                            // NEWTRUE
                    case 0x89: Push(false); break;                                           // NEWFALSE
                    case (byte)'K': Push((long)Byte(data)); break;                          // BININT1
                    case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(data, 2))); break; // BININT2
                    case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(data, 4))); break;  // BININT
                    case 0x8a: Push(Long(data, Byte(data), opAt)); break;                    // LONG1
                    case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Bytes(data, 8))); break;          // BINFLOAT
                    case (byte)'X': Push(Text(data, BinaryPrimitives.ReadUInt32LittleEndian(Bytes(data, 4)), opAt)); break; // BINUNICODE
                    case 0x8c: Push(Text(data, Byte(data), opAt)); break;                    // SHORT_BINUNICODE
                    case 0x8d: Push(Text(data, BinaryPrimitives.ReadUInt64LittleEndian(Bytes(data, 8)), opAt)); break; // BINUNICODE8
                    case (byte)')': Push(Array.Empty<object?>()); break;                    // EMPTY_TUPLE
                    case (byte)'t': Push(PopMark(opAt).ToArray()); break;                   // TUPLE
                    case 0x85: Push(PopN(1, opAt)); break;                                   // TUPLE1
                    case 0x86: Push(PopN(2, opAt)); break;                                   // TUPLE2
                    case 0x87: Push(PopN(3, opAt)); break;                                   // TUPLE3
                    case (byte)']': Push(new List<object?>()); break;                       // EMPTY_LIST
                    case (byte)'l': Push(PopMark(opAt)); break;                             // LIST
                    case (byte)'a': Append(opAt, PopN(1, opAt)); break;                     // APPEND
                    case (byte)'e': Append(opAt, PopMark(opAt)); break;                     // APPENDS
                    case (byte)'}': Push(new Dict()); break;                                // EMPTY_DICT
                    case (byte)'d': Push(SetItems(new Dict(), PopMark(opAt), opAt)); break; // DICT
                    case (byte)'s': { var pair = PopN(2, opAt); SetItems(TopDict(opAt), pair, opAt); break; }   // SETITEM
                    case (byte)'u': { var items = PopMark(opAt); SetItems(TopDict(opAt), items, opAt); break; } // SETITEMS
                    case (byte)'q': _memo[Byte(data)] = Top(opAt); break;                   // BINPUT
                    case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(data, 4))] = Top(opAt); break; // LONG_BINPUT
                    case 0x94: _memo[_memo.Count] = Top(opAt); break;                        // MEMOIZE
                    case (byte)'h': Push(Memo(Byte(data), opAt)); break;                    // BINGET
                    case (byte)'j': Push(Memo(BinaryPrimitives.ReadUInt32LittleEndian(Bytes(data, 4)), opAt)); break; // LONG_BINGET
                    case (byte)'0': PopN(1, opAt); break;                                   // POP
                    case (byte)'1': PopMark(opAt); break;                                   // POP_MARK
                    case (byte)'2': Push(Top(opAt)); break;                                 // DUP
                    case (byte)'c': Push(Name(Line(data, opAt), Line(data, opAt), opAt)); break;  // GLOBAL
                    case 0x93:                                                               // STACK_GLOBAL
                    {
                        var pair = PopN(2, opAt);
                        if (pair[0] is not string module || pair[1] is not string name) throw Bad(opAt, "STACK_GLOBAL without two strings");
                        Push(Name(module, name, opAt));
                        break;
                    }
                    case (byte)'Q': Push(PersistentStorage(PopN(1, opAt)[0], opAt)); break; // BINPERSID
                    case (byte)'R': { var args = PopN(2, opAt); Push(Reduce(args[0], args[1], opAt)); break; } // REDUCE
                    case (byte)'b': Build(PopN(1, opAt)[0], opAt); break;                   // BUILD
                    default:
                        throw Bad(opAt, $"opcode 0x{op:x2} is not one torch.save writes for a state dict");
                }
            }
        }

        byte Byte(ReadOnlySpan<byte> data) => Bytes(data, 1)[0];

        ReadOnlySpan<byte> Bytes(ReadOnlySpan<byte> data, ulong count)
        {
            if (count > (ulong)(data.Length - _at)) throw Bad(_at, $"needs {count} more bytes, but the pickle ends (it is {data.Length} bytes)");
            var span = data.Slice(_at, (int)count);
            _at += (int)count;
            return span;
        }

        long Long(ReadOnlySpan<byte> data, int count, int opAt)
        {
            if (count > 8) throw Bad(opAt, $"a {count}-byte integer is out of range");
            var bytes = Bytes(data, (ulong)count);
            long value = 0;
            for (int i = count - 1; i >= 0; i--) value = (value << 8) | bytes[i];
            if (count is > 0 and < 8 && (bytes[count - 1] & 0x80) != 0) value -= 1L << (8 * count);
            return value;
        }

        string Text(ReadOnlySpan<byte> data, ulong count, int opAt)
        {
            var bytes = Bytes(data, count);
            try
            {
                return StrictUtf8.GetString(bytes);
            }
            catch (ArgumentException)
            {
                throw Bad(opAt, "a string is not valid UTF-8");
            }
        }

        string Line(ReadOnlySpan<byte> data, int opAt)
        {
            int end = data[_at..].IndexOf((byte)'\n');
            if (end < 0) throw Bad(opAt, "a name is not terminated");
            string line = Text(data, (ulong)end, opAt);
            _at++;
            return line;
        }

        void Push(object? value) => _stack.Add(value);

        /// <summary>Values below the last MARK belong to an outer frame: only <see cref="PopMark"/> reaches them, as in Python's unpickler.</summary>
        int Floor => _marks.Count > 0 ? _marks[^1] : 0;

        object? Top(int opAt) => _stack.Count > Floor ? _stack[^1] : throw Bad(opAt, "the stack is empty");

        Dict TopDict(int opAt) => Top(opAt) as Dict ?? throw Bad(opAt, "SETITEM on something that is not a dict");

        object?[] PopN(int n, int opAt)
        {
            if (_stack.Count - Floor < n) throw Bad(opAt, $"needs {n} values on the stack");
            var values = _stack.GetRange(_stack.Count - n, n).ToArray();
            _stack.RemoveRange(_stack.Count - n, n);
            return values;
        }

        List<object?> PopMark(int opAt)
        {
            if (_marks.Count == 0) throw Bad(opAt, "no MARK to pop to");
            int mark = _marks[^1];
            _marks.RemoveAt(_marks.Count - 1);
            var values = _stack.GetRange(mark, _stack.Count - mark);
            _stack.RemoveRange(mark, _stack.Count - mark);
            return values;
        }

        object? Memo(long index, int opAt) => _memo.TryGetValue(index, out var value) ? value : throw Bad(opAt, $"memo entry {index} was never stored");

        void Append(int opAt, IReadOnlyList<object?> items)
        {
            if (Top(opAt) is not List<object?> list) throw Bad(opAt, "APPEND to something that is not a list");
            list.AddRange(items);
        }

        Dict SetItems(Dict dict, IReadOnlyList<object?> items, int opAt)
        {
            if (items.Count % 2 != 0) throw Bad(opAt, "an odd number of dict items");
            for (int i = 0; i < items.Count; i += 2) dict.Set(items[i], items[i + 1]);
            return dict;
        }

        Global Name(string module, string name, int opAt)
        {
            var global = new Global(module, name);
            bool known = (module, name) is ("collections", "OrderedDict") or ("torch._utils", "_rebuild_tensor_v2") or ("torch._utils", "_rebuild_tensor")
                         || (module == "torch" && StorageTypes.ContainsKey(name));
            if (known) return global;
            if ((module, name) == ("torch._utils", "_rebuild_parameter"))
                throw Bad(opAt, "holds nn.Parameter objects (a pickled module), not a state dict; save with torch.save(model.state_dict(), path)");
            throw Bad(opAt, $"refers to '{global}', which a state dict of tensors never needs; the file is refused and nothing in it is run");
        }

        /// <summary><c>('storage', torch.XStorage, key, location, elements)</c>, as torch.save's persistent ids are.</summary>
        Storage PersistentStorage(object? id, int opAt)
        {
            if (id is not object?[] { Length: 5 } t || t[0] is not "storage" || t[1] is not Global { Module: "torch" } type
                || t[2] is not string key || t[3] is not string || t[4] is not long elements)
                throw Bad(opAt, "a persistent id is not ('storage', torch.<Type>Storage, key, location, size)");
            if (!StorageTypes.TryGetValue(type.Name, out var dtype)) throw Bad(opAt, $"storage type '{type}' is not supported");
            if (elements < 0) throw Bad(opAt, $"storage '{key}' has {elements} elements");
            if (key.Length == 0 || !key.All(char.IsAsciiLetterOrDigit)) throw Bad(opAt, $"storage key '{key}' is not an archive name torch.save writes");
            return new Storage(dtype, key, elements);
        }

        object Reduce(object? callable, object? args, int opAt)
        {
            if (callable is not Global g || args is not object?[] a) throw Bad(opAt, "REDUCE without a known callable and an argument tuple");
            switch (g.Module, g.Name)
            {
                case ("collections", "OrderedDict"):
                    var dict = new Dict();
                    if (a.Length == 0) return dict;
                    // OrderedDict(pairs): torch writes no argument, TorchSharp.PyBridge an empty tuple.
                    IReadOnlyList<object?>? pairs = a is [List<object?> list] ? list : a is [object?[] tuple] ? tuple : null;
                    if (pairs is null || !pairs.All(p => p is object?[] { Length: 2 }))
                        throw Bad(opAt, "OrderedDict with arguments other than a sequence of pairs");
                    foreach (object?[] pair in pairs.Cast<object?[]>()) dict.Set(pair[0], pair[1]);
                    return dict;
                case ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_tensor"):
                    if (a.Length < 4 || a[0] is not Storage storage || a[1] is not long offset || a[2] is not object?[] shape || a[3] is not object?[] stride)
                        throw Bad(opAt, "_rebuild_tensor_v2 without (storage, offset, shape, stride)");
                    if (!shape.All(d => d is long) || !stride.All(d => d is long) || shape.Length != stride.Length)
                        throw Bad(opAt, $"a tensor's shape ({shape.Length} values) and stride ({stride.Length}) are not integers of the same rank");
                    return new View(storage, offset, shape.Cast<long>().ToArray(), stride.Cast<long>().ToArray());
                default:
                    throw Bad(opAt, $"'{g}' is not something to call");
            }
        }

        /// <summary>torch.save sets a state dict's <c>_metadata</c> (layer versions) this way; it carries no weights and is dropped.</summary>
        void Build(object? state, int opAt)
        {
            if (Top(opAt) is not Dict || state is not Dict)
                throw Bad(opAt, "BUILD on something other than a dict");
        }

        M3TrainException Bad(int at, string problem) => new($"{source}: pickle byte {at}: {problem}.");
    }
}
