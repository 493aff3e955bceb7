using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace M3Train.Data;

/// <summary>
/// Reads a Parquet training file one row group at a time, never whole (columns as in JSONL: <c>query</c>, <c>text</c>,
/// <c>prompt</c>, <c>type</c> strings; <c>pos</c>, <c>neg</c> lists of strings or strings; <c>pos_scores</c>,
/// <c>neg_scores</c> lists of float or double; sentence-transformers' <c>anchor</c>, <c>positive</c>, <c>negative</c>
/// for query, pos, neg). The footer is checked before Parquet.Net decodes it (<see cref="ParquetFooter"/>), and the
/// schema before any row, so a wrong column type is reported by name.
/// </summary>
public static class ParquetRowReader
{
    static readonly string[] StringColumns = ["query", "anchor", "text", "prompt", "type"];
    static readonly string[] TextColumns = ["pos", "positive", "neg", "negative"];
    static readonly string[] ScoreListColumns = ["pos_scores", "neg_scores"];

    /// <summary>The file's row groups and score type; throws <see cref="M3TrainException"/> on a damaged footer or a wrong schema.</summary>
    public static ParquetLayout ReadLayout(string path)
    {
        ParquetFooter.Check(path);
        ParquetReader? reader = null;
        try
        {
            reader = ParquetReader.CreateAsync(path).GetAwaiter().GetResult();
            var (doubleScores, posStrings, negStrings) = CheckSchema(path, reader.Schema);
            var groups = reader.Metadata?.RowGroups ?? [];
            var rows = new long[groups.Count];
            var offsets = new long[groups.Count];
            for (int g = 0; g < groups.Count; g++)
            {
                if (groups[g].NumRows < 0) throw new M3TrainException($"{path}: not a readable Parquet file (row group {g} claims {groups[g].NumRows} rows)");
                rows[g] = groups[g].NumRows;
                long start = groups[g].Columns.Select(c => c.MetaData is { } m ? Math.Min(m.DictionaryPageOffset ?? m.DataPageOffset, m.DataPageOffset) : long.MaxValue)
                    .DefaultIfEmpty(long.MaxValue).Min();
                // A footer may place groups anywhere: offsets only share groups out among parts, so they are kept in file order.
                offsets[g] = Math.Max(g > 0 ? offsets[g - 1] : 0, start == long.MaxValue ? groups[g].FileOffset ?? 0 : start);
            }
            return new ParquetLayout(doubleScores, posStrings, negStrings, rows, offsets);
        }
        catch (Exception e) when (IsParserFailure(e))
        {
            throw new M3TrainException($"{path}: not a readable Parquet file ({e.Message})", e);
        }
        finally
        {
            reader?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Row group <paramref name="group"/>'s rows (index i is the group's row i), or null with the problem where a row cannot be read.</summary>
    public static (TrainRow? Row, string? Problem)[] ReadGroup(string path, ParquetLayout layout, int group) =>
        layout.DoubleScores ? Read<double>(path, layout, group) : Read<float>(path, layout, group);

    /// <summary>Throws on a column of the wrong type; returns whether scores are stored as double, and whether pos and neg are single strings.</summary>
    static (bool DoubleScores, bool PosStrings, bool NegStrings) CheckSchema(string path, ParquetSchema schema)
    {
        var fields = schema.Fields.ToDictionary(f => f.Name);
        if (!fields.ContainsKey("query") && !fields.ContainsKey("anchor") && !fields.ContainsKey("text"))
            throw BadSchema(path, $"no \"query\" (or \"anchor\", or \"text\") column; expected columns as {RowShapes.GroupSchema}");
        foreach (var group in fields.Keys.Where(k => JsonlRowParser.Canonical(k) is not null).GroupBy(k => JsonlRowParser.Canonical(k)))
            if (group.Count() > 1)
                throw BadSchema(path, $"columns {string.Join(" and ", group.Select(k => $"\"{k}\""))} are the same field under m3train's and sentence-transformers' names: keep one");
        foreach (string name in StringColumns)
            if (fields.TryGetValue(name, out var f) && !IsStringField(f))
                throw BadSchema(path, $"column \"{name}\" is {Describe(f)}, expected a string");
        foreach (string name in TextColumns)
            if (fields.TryGetValue(name, out var f) && !IsStringField(f) && !(f is ListField { Item: DataField item } && IsString(item.ClrType)))
                throw BadSchema(path, $"column \"{name}\" is {Describe(f)}, expected a string or a list of strings");
        Type? scoreType = null;
        foreach (string name in ScoreListColumns)
        {
            if (!fields.TryGetValue(name, out var f)) continue;
            if (f is not ListField { Item: DataField item } || (item.ClrType != typeof(float) && item.ClrType != typeof(double)))
                throw BadSchema(path, $"column \"{name}\" is {Describe(f)}, expected a list of float or double");
            if (scoreType is not null && scoreType != item.ClrType)
                throw BadSchema(path, "\"pos_scores\" and \"neg_scores\" have different element types");
            scoreType = item.ClrType;
        }
        bool Strings(string name, string alias) =>
            (fields.TryGetValue(name, out var f) || fields.TryGetValue(alias, out f)) && IsStringField(f);
        return (scoreType == typeof(double), Strings("pos", "positive"), Strings("neg", "negative"));
    }

    /// <summary>The row type's pos and neg properties take the columns' types: a string or a list of strings each.</summary>
    static (TrainRow?, string?)[] Read<TScore>(string path, ParquetLayout layout, int group) where TScore : struct, IConvertible =>
        layout.PosStrings ? Read<TScore, string>(path, layout, group) : Read<TScore, List<string?>>(path, layout, group);

    static (TrainRow?, string?)[] Read<TScore, TPos>(string path, ParquetLayout layout, int group) where TScore : struct, IConvertible where TPos : class =>
        layout.NegStrings ? Read<TScore, TPos, string>(path, group) : Read<TScore, TPos, List<string?>>(path, group);

    static (TrainRow?, string?)[] Read<TScore, TPos, TNeg>(string path, int group)
        where TScore : struct, IConvertible where TPos : class where TNeg : class
    {
        IList<ParquetRow<TScore, TPos, TNeg>> rows;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            rows = ParquetSerializer.DeserializeAsync<ParquetRow<TScore, TPos, TNeg>>(stream, rowGroupIndex: group).GetAwaiter().GetResult().Data;
        }
        catch (Exception e) when (IsParserFailure(e))
        {
            throw new M3TrainException($"{path}: cannot read the rows of row group {group} ({e.Message})", e);
        }
        var result = new (TrainRow?, string?)[rows.Count];
        for (int i = 0; i < rows.Count; i++)
            result[i] = rows[i].ToTrainRow();
        return result;
    }

    /// <summary>
    /// Parquet.Net meets a damaged file with whatever its decoding trips over (InvalidOperationException, index and
    /// overflow errors, ...), so every exception but running out of memory means "this file cannot be read".
    /// </summary>
    static bool IsParserFailure(Exception e) => e is not (OutOfMemoryException or M3TrainException);

    static bool IsString(Type type) => type == typeof(string) || type == typeof(ReadOnlyMemory<char>);

    static bool IsStringField(Field f) => f is DataField { IsArray: false } d && IsString(d.ClrType);

    static string Describe(Field field) => field switch
    {
        ListField { Item: DataField item } => $"a list of {item.ClrType.Name}",
        ListField => "a list of structures",
        DataField { IsArray: true } d => $"an array of {d.ClrType.Name}",
        DataField d => d.ClrType == typeof(ReadOnlyMemory<char>) ? "String" : d.ClrType.Name,
        _ => field.SchemaType.ToString(),
    };

    static M3TrainException BadSchema(string path, string problem) => new($"{path}: bad Parquet schema: {problem}");

    /// <summary>The columns as the serializer maps them; a file has at most one of each m3train / sentence-transformers pair.</summary>
    /// <typeparam name="TScore">float or double, as the file stores teacher scores.</typeparam>
    /// <typeparam name="TPos">string or List&lt;string?&gt;, as the file stores pos (or positive).</typeparam>
    /// <typeparam name="TNeg">string or List&lt;string?&gt;, as the file stores neg (or negative).</typeparam>
    sealed class ParquetRow<TScore, TPos, TNeg> where TScore : struct, IConvertible where TPos : class where TNeg : class
    {
        [JsonPropertyName("query")] public string? Query { get; set; }
        [JsonPropertyName("anchor")] public string? Anchor { get; set; }
        [JsonPropertyName("text")] public string? Text { get; set; }
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("type")] public string? Type { get; set; }
        [JsonPropertyName("pos")] public TPos? Pos { get; set; }
        [JsonPropertyName("positive")] public TPos? Positive { get; set; }
        [JsonPropertyName("neg")] public TNeg? Neg { get; set; }
        [JsonPropertyName("negative")] public TNeg? Negative { get; set; }
        [JsonPropertyName("pos_scores")] public List<TScore>? PosScores { get; set; }
        [JsonPropertyName("neg_scores")] public List<TScore>? NegScores { get; set; }

        public (TrainRow?, string?) ToTrainRow()
        {
            string? query = Query ?? Anchor;
            if (query is null && Text is null) return (null, $"missing \"query\"; expected {RowShapes.GroupSchema}");
            var (pos, posProblem) = Texts(Pos ?? Positive, Pos is null && Positive is not null ? "positive" : "pos");
            var (neg, negProblem) = Texts(Neg ?? Negative, Neg is null && Negative is not null ? "negative" : "neg");
            if ((posProblem ?? negProblem) is { } problem) return (null, problem);
            return (new TrainRow
            {
                Query = query,
                Text = query is null ? Text : null,
                Prompt = Prompt,
                Type = Type,
                Positives = pos,
                Negatives = neg,
                PositiveScores = PosScores?.Select(s => s.ToSingle(null)).ToArray(),
                NegativeScores = NegScores?.Select(s => s.ToSingle(null)).ToArray(),
            }, null);
        }

        /// <summary>A cell of a string or list-of-strings column as texts: one string is a list of one.</summary>
        static (string[] Texts, string? Problem) Texts(object? cell, string name) => cell switch
        {
            null => ([], null),
            string one => ([one], null),
            List<string?> list when list.IndexOf(null) is >= 0 and var i => ([], $"\"{name}\"[{i}] is null, not a string"),
            List<string?> list => ([.. list.Select(s => s!)], null),
            _ => throw new InvalidOperationException($"column \"{name}\" read as {cell.GetType().Name}"),
        };
    }
}
