namespace M3Train.Data;

/// <summary>
/// One dataset of the batch plan: a file, or the small files of one folder merged. Every batch comes from one
/// dataset, so tasks are not mixed. Its rows are its files' valid rows, in file order, read from their row indexes
/// as they are asked for: a dataset holds no per-row memory.
/// </summary>
public sealed class TrainDataset
{
    readonly DataFileIndex[] _files;
    readonly int[] _fileStarts;

    public TrainDataset(string name, IReadOnlyList<DataFileIndex> files)
    {
        long rows = files.Sum(f => (long)f.RowCount);
        if (rows == 0) throw new ArgumentException("a dataset needs rows", nameof(files));
        if (rows > int.MaxValue)
            throw new M3TrainException($"{name}: {rows} rows, more than the {int.MaxValue} one dataset may hold; put its files in separate datasets (folders)");
        Name = name;
        _files = [.. files];
        _fileStarts = new int[files.Count + 1];
        for (int i = 0; i < files.Count; i++) _fileStarts[i + 1] = _fileStarts[i] + files[i].RowCount;
        Count = _fileStarts[^1];
        NoInBatchNegatives = files[0].NoInBatchNegatives;
        Kind = files[0].Kind;
        Type = files.First(f => f.RowCount > 0).FirstType;
        HasTeacherScores = Kind == RowKind.Group && files.Sum(f => f.ScoredRows) == Count;
    }

    public string Name { get; }
    public IReadOnlyList<DataFileIndex> Files => _files;
    public bool NoInBatchNegatives { get; }
    public RowKind Kind { get; }
    /// <summary>The first row's <c>type</c>: decides the batch size (symmetric types halve it), as in the reference.</summary>
    public string? Type { get; }
    /// <summary>Whether every row has teacher scores; batches carry teacher scores only then.</summary>
    public bool HasTeacherScores { get; }
    public int Count { get; }

    public RowInfo Info(int row)
    {
        var (file, local) = Locate(row);
        return file.Row(local);
    }

    public TrainRow ReadRow(int row)
    {
        var (file, local) = Locate(row);
        return file.ReadRow(file.Row(local));
    }

    /// <summary>Reads <paramref name="rows"/> again (in parallel; a Parquet row group shared by several of them is decoded once).</summary>
    public TrainRow[] ReadRows(ReadOnlySpan<int> rows)
    {
        var read = new TrainRow[rows.Length];
        var byFile = new Dictionary<DataFileIndex, List<(int Slot, RowInfo Row)>>();
        for (int i = 0; i < rows.Length; i++)
        {
            var (file, local) = Locate(rows[i]);
            if (!byFile.TryGetValue(file, out var list)) byFile[file] = list = [];
            list.Add((i, file.Row(local)));
        }
        foreach (var (file, list) in byFile)
        {
            var fileRows = file.ReadRows(list.Select(x => x.Row).ToList());
            for (int i = 0; i < list.Count; i++) read[list[i].Slot] = fileRows[i];
        }
        return read;
    }

    (DataFileIndex File, int Local) Locate(int row)
    {
        if ((uint)row >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(row), $"row {row} of a dataset of {Count}");
        int f = RangeStarts.Find<int>(_fileStarts, row);
        return (_files[f], row - _fileStarts[f]);
    }

    /// <summary>The row's length for binning: its longest text, each text capped at its maximum length.</summary>
    public int RowLength(int row, DataConfig config)
    {
        var info = Info(row);
        return RowLength(info.QueryTokens, info.PassageTokens, config);
    }

    int RowLength(int queryTokens, int passageTokens, DataConfig config) => Kind == RowKind.Text
        ? Math.Min(queryTokens, config.PassageMaxLen)
        : Math.Max(Math.Min(queryTokens, config.QueryMaxLen), Math.Min(passageTokens, config.PassageMaxLen));

    /// <summary>
    /// The length bins of rows <paramref name="start"/> .. + <paramref name="bins"/>.Length, read straight from the
    /// mapped index: the batch plan's pass over every row.
    /// </summary>
    public void BinsOf(int start, Span<byte> bins, DataConfig config, ReadOnlySpan<int> edges)
    {
        int done = 0;
        while (done < bins.Length)
        {
            var (file, local) = Locate(start + done);
            var (part, inPart) = file.Locate(local);
            int n = (int)Math.Min(bins.Length - done, part.Count - inPart);
            var records = part.Records(inPart, n);
            for (int i = 0; i < n; i++)
            {
                var (query, passage) = PackedRow.ReadTokens(records.Slice(i * PackedRow.Bytes, PackedRow.Bytes));
                bins[done + i] = (byte)BatchPlan.BinOf(RowLength(query, passage, config), edges);
            }
            done += n;
        }
    }
}
