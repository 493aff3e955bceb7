using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace M3Train.Cli;

/// <summary>
/// Writes float32 rows as one NumPy <c>.npy</c> matrix [rows, columns] (format version 1.0, C order), the file
/// <c>numpy.load</c> reads. The row count is known only at the end, so the header's space is reserved first and
/// written by <see cref="Complete"/>; a stream that cannot seek (standard output) gets the rows through a
/// temporary file.
/// </summary>
public sealed class NpyMatrixWriter : IDisposable
{
    /// <summary>Header bytes, magic included: a multiple of 64 as numpy writes them, room for any two 64-bit sizes.</summary>
    public const int HeaderBytes = 128;

    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    readonly Stream _target;
    readonly Stream _data;
    readonly int _columns;
    long _rows;

    /// <param name="target">Where the file goes.</param>
    /// <param name="columns">Floats per row.</param>
    public NpyMatrixWriter(Stream target, int columns)
    {
        _target = target;
        _columns = columns;
        _data = target.CanSeek ? target : new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        _data.Write(new byte[HeaderBytes]);
    }

    public void WriteRow(ReadOnlySpan<float> row)
    {
        if (row.Length != _columns) throw new ArgumentException($"a row of {row.Length} floats in a matrix of {_columns} columns", nameof(row));
        if (BitConverter.IsLittleEndian)
        {
            _data.Write(MemoryMarshal.AsBytes(row));
        }
        else
        {
            Span<byte> bytes = stackalloc byte[4];
            foreach (float v in row)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes, v);
                _data.Write(bytes);
            }
        }
        _rows++;
    }

    /// <summary>Writes the header with the final row count (and copies the rows out when they went through a temporary file).</summary>
    public void Complete()
    {
        _data.Position = 0;
        _data.Write(Header(_rows, _columns));
        if (_data != _target)
        {
            _data.Position = 0;
            _data.CopyTo(_target);
        }
        _target.Flush();
    }

    /// <summary>The <see cref="HeaderBytes"/>-byte header of a little-endian float32 matrix: magic, version 1.0, length, then the dict padded with spaces and ended by a newline.</summary>
    public static byte[] Header(long rows, int columns)
    {
        string dict = string.Create(CultureInfo.InvariantCulture, $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
        int length = HeaderBytes - Magic.Length - 2;
        var header = new byte[HeaderBytes];
        Magic.CopyTo(header, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(Magic.Length), (ushort)length);
        Encoding.ASCII.GetBytes(dict.PadRight(length - 1) + "\n").CopyTo(header, Magic.Length + 2);
        return header;
    }

    public void Dispose()
    {
        if (_data != _target) _data.Dispose();
    }
}
