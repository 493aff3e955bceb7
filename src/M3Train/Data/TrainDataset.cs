namespace M3Train.Data;

/// <summary>
/// One dataset of the batch plan: a file, or the small files of one folder merged. Every batch comes from one
/// dataset, so tasks are not mixed. Rows are the valid rows, in file order.
/// </summary>
public sealed class TrainDataset
{
    readonly DataFileIndex[] _fileOfRow;
    readonly RowInfo[] _rows;

    public TrainDataset(string name, IReadOnlyList<(DataFileIndex File, RowInfo Row)> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("a dataset needs rows", nameof(rows));
        Name = name;
        _fileOfRow = rows.Select(r => r.File).ToArray();
        _rows = rows.Select(r => r.Row).ToArray();
        Files = _fileOfRow.Distinct().ToArray();
        NoInBatchNegatives = _fileOfRow[0].NoInBatchNegatives;
        Kind = _fileOfRow[0].Kind;
        Type = TypeOf(0);
        HasTeacherScores = Kind == RowKind.Group && _rows.All(r => r.HasScores);
    }

    public string Name { get; }
    public IReadOnlyList<DataFileIndex> Files { get; }
    public bool NoInBatchNegatives { get; }
    public RowKind Kind { get; }
    /// <summary>The first row's <c>type</c>: decides the batch size (symmetric types halve it), as in the reference.</summary>
    public string? Type { get; }
    /// <summary>Whether every row has teacher scores; batches carry teacher scores only then.</summary>
    public bool HasTeacherScores { get; }
    public int Count => _rows.Length;

    public RowInfo Info(int row) => _rows[row];
    public string? TypeOf(int row) => _fileOfRow[row].TypeOf(_rows[row]);
    public TrainRow ReadRow(int row) => _fileOfRow[row].ReadRow(_rows[row]);
    public string Location(int row) => _fileOfRow[row].Location(_rows[row].Line);

    /// <summary>The row's length for binning: its longest text, each text capped at its maximum length.</summary>
    public int RowLength(int row, DataConfig config)
    {
        var info = _rows[row];
        return Kind == RowKind.Text
            ? Math.Min(info.QueryTokens, config.PassageMaxLen)
            : Math.Max(Math.Min(info.QueryTokens, config.QueryMaxLen), Math.Min(info.PassageTokens, config.PassageMaxLen));
    }
}
