using System.Text;

namespace M3Train.Tests.Cli;

/// <summary>
/// What a terminal of a given width shows after some output: carriage return, line feed, erase-line
/// (<c>ESC [ 2 K</c>) and colour codes (<c>ESC [ ... m</c>, ignored) are interpreted, and text that reaches the last
/// column wraps onto the next row, as a real terminal wraps it.
/// </summary>
internal sealed class TerminalScreen(int width)
{
    readonly List<StringBuilder> _rows = [new()];
    int _row, _column;

    public static IReadOnlyList<string> Render(string output, int width)
    {
        var screen = new TerminalScreen(width);
        screen.Write(output);
        return screen.Rows;
    }

    public IReadOnlyList<string> Rows => _rows.Select(r => r.ToString().TrimEnd()).ToList();

    public void Write(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\u001b' && i + 1 < text.Length && text[i + 1] == '[')
            {
                int end = i + 2;
                while (end < text.Length && !char.IsLetter(text[end])) end++;
                if (end < text.Length && text[end] == 'K') _rows[_row].Clear();
                i = end;
            }
            else if (c == '\r') _column = 0;
            else if (c == '\n') NewRow();
            else
            {
                if (_column == width) NewRow();
                var row = _rows[_row];
                while (row.Length < _column) row.Append(' ');
                if (_column < row.Length) row[_column] = c;
                else row.Append(c);
                _column++;
            }
        }
    }

    void NewRow()
    {
        _row++;
        _column = 0;
        if (_row == _rows.Count) _rows.Add(new StringBuilder());
    }
}
