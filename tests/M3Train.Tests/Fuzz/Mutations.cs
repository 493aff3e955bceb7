using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;
using CsCheck;

namespace M3Train.Tests.Fuzz;

/// <summary>
/// CsCheck generators of hostile variants of a valid file: bit flips, overwritten bytes, truncation, deleted and
/// inserted runs, integers planted where size fields live (0, -1, 2^31, 2^32, 2^63, ...); for text formats also
/// numbers swapped for hostile ones, structural characters inserted, lines duplicated, dropped or swapped.
/// </summary>
internal static partial class Mutations
{
    static readonly ulong[] SizeValues = [0, ulong.MaxValue, 1, int.MaxValue, 1UL << 31, 1UL << 32, long.MaxValue, 1UL << 63, 40_000_000_000];
    static readonly string[] HostileNumbers = ["0", "-1", "2147483648", "4294967296", "9223372036854775808", "18446744073709551616", "1e400", "-1e400", "1.5", "1e-400", "NaN", "Infinity", "-0"];
    static readonly string[] StructuralText = ["{", "}", "[", "]", ",", ":", "\"", "'", "\n", "#", "&a ", "*a", "!!binary ", "- ", "? ", "|", "\t", "\\", "\u0000", "\uFFFD", "---\n"];

    [GeneratedRegex(@"-?\d+(\.\d+)?([eE][+-]?\d+)?")]
    private static partial Regex Number();

    /// <summary>Edits of bytes; positions fall in [0, <paramref name="hot"/>) seven times in ten (a header), anywhere otherwise.</summary>
    public static Gen<Edit> BinaryEdits(byte[] valid, int hot) => BinaryEdit(valid.Length, hot);

    /// <summary>Text-aware edits mixed with byte edits, for JSON, YAML, JSONL and TSV.</summary>
    public static Gen<Edit> TextEdits(byte[] valid) => Gen.Frequency((3, TextEdit()), (2, BinaryEdit(valid.Length, valid.Length)));

    static Gen<int> Position(int length, int hot) =>
        Gen.Frequency((7, Gen.Int[0, Math.Max(0, Math.Min(hot, length) - 1)]), (3, Gen.Int[0, Math.Max(0, length - 1)]));

    static Gen<Edit> BinaryEdit(int length, int hot) => Gen.Frequency(
        (3, Gen.Select(Position(length, hot), Gen.Int[0, 7], (at, bit) => new Edit($"flip bit {bit} of byte {at}",
            b => Change(b, c => { if (at < c.Length) c[at] ^= (byte)(1 << bit); })))),
        (2, Gen.Select(Position(length, hot), Gen.Byte, (at, value) => new Edit($"byte {at} = 0x{value:x2}",
            b => Change(b, c => { if (at < c.Length) c[at] = value; })))),
        (2, Gen.Int[0, Math.Max(0, length - 1)].Select(n => new Edit($"truncate to {n} bytes", b => b[..Math.Min(n, b.Length)]))),
        (3, Gen.Select(Position(length, hot), Gen.OneOf(4, 8), Gen.OneOf(SizeValues), (at, width, value) => new Edit($"{width}-byte integer {value} at {at}",
            b => Change(b, c =>
            {
                if (at + width > c.Length) return;
                if (width == 4) BinaryPrimitives.WriteUInt32LittleEndian(c.AsSpan(at), (uint)value);
                else BinaryPrimitives.WriteUInt64LittleEndian(c.AsSpan(at), value);
            })))),
        (1, Gen.Select(Position(length, hot), Gen.Int[1, 64], (at, n) => new Edit($"delete {n} bytes at {at}",
            b => at >= b.Length ? b : [.. b[..at], .. b[Math.Min(b.Length, at + n)..]]))),
        (1, Gen.Select(Position(length, hot), Gen.Byte.Array[1, 16], (at, bytes) => new Edit($"insert {Convert.ToHexString(bytes)} at {at}",
            b => [.. b[..Math.Min(at, b.Length)], .. bytes, .. b[Math.Min(at, b.Length)..]]))));

    static Gen<Edit> TextEdit() => Gen.Frequency(
        (3, Gen.Select(Gen.Int[0, 1000], Gen.OneOf(HostileNumbers), (k, number) => new Edit($"number #{k} = {number}", b => OnText(b, s =>
        {
            var matches = Number().Matches(s);
            if (matches.Count == 0) return s;
            var m = matches[k % matches.Count];
            return s[..m.Index] + number + s[(m.Index + m.Length)..];
        })))),
        (2, Gen.Select(Gen.Int[0, 100_000], Gen.OneOf(StructuralText), (at, text) => new Edit($"insert {Escape(text)} at char {at}", b => OnText(b, s =>
        {
            int i = s.Length == 0 ? 0 : at % (s.Length + 1);
            return s[..i] + text + s[i..];
        })))),
        (1, Gen.Select(Gen.Int[0, 1000], Gen.Int[0, 1000], Gen.OneOf("duplicate", "drop", "swap"), (i, j, how) => new Edit($"{how} line {i} ({j})", b => OnText(b, s =>
        {
            var lines = s.Split('\n').ToList();
            int a = i % lines.Count, c = j % lines.Count;
            switch (how)
            {
                case "duplicate": lines.Insert(a, lines[a]); break;
                case "drop": lines.RemoveAt(a); break;
                default: (lines[a], lines[c]) = (lines[c], lines[a]); break;
            }
            return string.Join('\n', lines);
        })))),
        (1, Gen.Select(Gen.Int[0, 1000], Gen.OneOf(0, 1, 100_000), (k, size) => new Edit($"string #{k} becomes {size} characters", b => OnText(b, s =>
        {
            int quotes = s.Count(ch => ch == '"') / 2;
            if (quotes == 0) return s;
            int start = -1;
            for (int n = 0, i = 0; i < s.Length; i++)
                if (s[i] == '"' && n++ == 2 * (k % quotes)) { start = i; break; }
            int end = s.IndexOf('"', start + 1);
            return end < 0 ? s : s[..(start + 1)] + new string('é', size) + s[end..];
        })))));

    static byte[] Change(byte[] bytes, Action<byte[]> change)
    {
        var copy = (byte[])bytes.Clone();
        change(copy);
        return copy;
    }

    static byte[] OnText(byte[] bytes, Func<string, string> change) => Encoding.UTF8.GetBytes(change(Encoding.UTF8.GetString(bytes)));

    static string Escape(string s) => s.Replace("\n", "\\n").Replace("\t", "\\t").Replace("\u0000", "\\0");
}
