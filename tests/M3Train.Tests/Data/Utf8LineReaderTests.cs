using System.Text;
using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

public class Utf8LineReaderTests
{
    static List<(string Line, long Number, long Start)> ReadAll(byte[] bytes)
    {
        using var reader = new Utf8LineReader(new MemoryStream(bytes));
        var lines = new List<(string, long, long)>();
        while (reader.TryReadLine(out var line)) lines.Add((Encoding.UTF8.GetString(line), reader.LineNumber, reader.LineStart));
        return lines;
    }

    [Fact]
    public void SplitsOnLfAndCrLfSkipsTheBomAndKeepsALastLineWithoutNewline()
    {
        byte[] bytes = [0xEF, 0xBB, 0xBF, .. "ab\r\n\ncd\nlast"u8];
        Assert.Equal([("ab", 1L, 3L), ("", 2L, 7L), ("cd", 3L, 8L), ("last", 4L, 11L)], ReadAll(bytes));
    }

    [Fact]
    public void LinesLongerThanTheBufferComeBackWhole()
    {
        string longLine = new('x', 200_000);
        var lines = ReadAll(Encoding.UTF8.GetBytes($"short\n{longLine}\nend\n"));
        Assert.Equal(["short", longLine, "end"], lines.Select(l => l.Line));
        Assert.Equal(6, lines[1].Start);
    }
}
