using System.Text;
using System.Text.Unicode;
using M3Train.Data;

namespace M3Train.Eval;

/// <summary>
/// Texts for <see cref="ModelInspector"/>: a <c>.txt</c> file (one text a line), or JSONL whose lines are
/// fine-tuning rows (<c>query</c>, <c>pos</c>, <c>neg</c>) or <c>{"text": ...}</c> rows (BEIR corpus and query
/// files are such rows). Bad lines are errors naming <c>file:line</c>.
/// </summary>
public sealed record InspectionInput(IReadOnlyList<string> Texts, IReadOnlyList<TrainRow> Rows)
{
    /// <param name="path">The file.</param>
    /// <param name="limit">Lines read at most (the rest is ignored).</param>
    public static InspectionInput Read(string path, int limit = int.MaxValue)
    {
        if (!File.Exists(path)) throw new M3TrainException($"{path}: file not found");
        bool plain = Path.GetExtension(path).Equals(".txt", StringComparison.OrdinalIgnoreCase);
        var texts = new List<string>();
        var rows = new List<TrainRow>();
        using var reader = new Utf8LineReader(File.OpenRead(path));
        while (texts.Count + rows.Count < limit && reader.TryReadLine(out var line))
        {
            if (line.Trim(" \t"u8).IsEmpty) continue;
            if (plain)
            {
                if (!Utf8.IsValid(line)) throw new M3TrainException($"{path}:{reader.LineNumber}: invalid UTF-8");
                texts.Add(Encoding.UTF8.GetString(line));
                continue;
            }
            var row = JsonlRowParser.Parse(line, out string? problem)
                ?? throw new M3TrainException($"{path}:{reader.LineNumber}: {problem} (a .txt file is read as one text a line)");
            if (row.Kind == RowKind.Text) texts.Add(row.Text!);
            else rows.Add(row);
        }
        if (texts.Count + rows.Count == 0) throw new M3TrainException($"{path}: no texts");
        return new InspectionInput(texts, rows);
    }
}
