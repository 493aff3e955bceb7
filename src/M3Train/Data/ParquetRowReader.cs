using System.Text.Json.Serialization;
using Parquet;
using Parquet.Schema;
using Parquet.Serialization;

namespace M3Train.Data;

/// <summary>
/// Reads a Parquet training file one row group at a time, never whole (columns as in JSONL: <c>query</c>, <c>text</c>,
/// <c>prompt</c>, <c>type</c> strings; <c>pos</c>, <c>neg</c> lists of strings; <c>pos_scores</c>, <c>neg_scores</c>
/// lists of float or double). The footer is checked before Parquet.Net decodes it (<see cref="ParquetFooter"/>), and
/// the schema before any row, so a wrong column type is reported by name.
/// </summary>
public static class ParquetRowReader
{
    static readonly string[] StringColumns = ["query", "text", "prompt", "type"];
    static readonly string[] TextListColumns = ["pos", "neg"];
    static readonly string[] ScoreListColumns = ["pos_scores", "neg_scores"];

    /// <summary>The file's row groups and score type; throws <see cref="M3TrainException"/> on a damaged footer or a wrong schema.</summary>
    public static ParquetLayout ReadLayout(string path)
    {
        ParquetFooter.Check(path);
        ParquetReader? reader = null;
        try
        {
            reader = ParquetReader.CreateAsync(path).GetAwaiter().GetResult();
            bool doubleScores = CheckSchema(path, reader.Schema);
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
            return new ParquetLayout(doubleScores, rows, offsets);
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
        layout.DoubleScores ? Read<double>(path, group) : Read<float>(path, group);

    /// <summary>Throws on a column of the wrong type; returns whether scores are stored as double.</summary>
    static bool CheckSchema(string path, ParquetSchema schema)
    {
        var fields = schema.Fields.ToDictionary(f => f.Name);
        if (!fields.ContainsKey("query") && !fields.ContainsKey("text"))
            throw BadSchema(path, "no \"query\" (or \"text\") column");
        foreach (string name in StringColumns)
            if (fields.TryGetValue(name, out var f) && !(f is DataField { IsArray: false } d && IsString(d.ClrType)))
                throw BadSchema(path, $"column \"{name}\" is {Describe(f)}, expected a string");
        foreach (string name in TextListColumns)
            if (fields.TryGetValue(name, out var f) && !(f is ListField { Item: DataField item } && IsString(item.ClrType)))
                throw BadSchema(path, $"column \"{name}\" is {Describe(f)}, expected a list of strings");
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
        return scoreType == typeof(double);
    }

    static (TrainRow?, string?)[] Read<TScore>(string path, int group) where TScore : struct, IConvertible
    {
        IList<ParquetRow<TScore>> rows;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            rows = ParquetSerializer.DeserializeAsync<ParquetRow<TScore>>(stream, rowGroupIndex: group).GetAwaiter().GetResult().Data;
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

    static string Describe(Field field) => field switch
    {
        ListField { Item: DataField item } => $"a list of {item.ClrType.Name}",
        ListField => "a list of structures",
        DataField { IsArray: true } d => $"an array of {d.ClrType.Name}",
        DataField d => d.ClrType == typeof(ReadOnlyMemory<char>) ? "String" : d.ClrType.Name,
        _ => field.SchemaType.ToString(),
    };

    static M3TrainException BadSchema(string path, string problem) => new($"{path}: bad Parquet schema: {problem}");

    /// <summary>The columns as the serializer maps them.</summary>
    sealed class ParquetRow<TScore> where TScore : struct, IConvertible
    {
        [JsonPropertyName("query")] public string? Query { get; set; }
        [JsonPropertyName("text")] public string? Text { get; set; }
        [JsonPropertyName("prompt")] public string? Prompt { get; set; }
        [JsonPropertyName("type")] public string? Type { get; set; }
        [JsonPropertyName("pos")] public List<string?>? Pos { get; set; }
        [JsonPropertyName("neg")] public List<string?>? Neg { get; set; }
        [JsonPropertyName("pos_scores")] public List<TScore>? PosScores { get; set; }
        [JsonPropertyName("neg_scores")] public List<TScore>? NegScores { get; set; }

        public (TrainRow?, string?) ToTrainRow()
        {
            if (Query is null && Text is null) return (null, "missing \"query\"");
            if (Pos?.IndexOf(null) is >= 0 and var p) return (null, $"\"pos\"[{p}] is null, not a string");
            if (Neg?.IndexOf(null) is >= 0 and var n) return (null, $"\"neg\"[{n}] is null, not a string");
            return (new TrainRow
            {
                Query = Query,
                Text = Query is null ? Text : null,
                Prompt = Prompt,
                Type = Type,
                Positives = Pos?.Select(s => s!).ToArray() ?? [],
                Negatives = Neg?.Select(s => s!).ToArray() ?? [],
                PositiveScores = PosScores?.Select(s => s.ToSingle(null)).ToArray(),
                NegativeScores = NegScores?.Select(s => s.ToSingle(null)).ToArray(),
            }, null);
        }
    }
}
