using System.Text.Json;

namespace M3Train.Eval;

/// <summary>
/// Reads BEIR-format retrieval data (Thakur et al. 2021): <c>corpus.jsonl</c>, <c>queries.jsonl</c> and a qrels TSV.
/// Errors are <see cref="M3TrainException"/>s that name the file and line and say what is wrong.
/// </summary>
/// <remarks>
/// <c>_id</c> may be a JSON string or number (some BEIR sets write numbers); other fields are ignored.
/// Qrels: <c>query-id corpus-id score</c> separated by tabs (or spaces), with a header line, which is recognized
/// as a first line whose score column is not an integer; the TREC layout <c>query-id 0 corpus-id score</c> is also
/// read. A repeated (query, document) pair must repeat the same grade.
/// </remarks>
public static class BeirReader
{
    public static IReadOnlyList<BeirDocument> ReadCorpus(string path)
    {
        var documents = new List<BeirDocument>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, root) in JsonLines(path))
        {
            string id = Id(root, path, line, seen);
            string title = OptionalString(root, "title", path, line);
            string text = RequiredString(root, "text", path, line);
            documents.Add(new BeirDocument(id, title, text));
        }
        return documents;
    }

    public static IReadOnlyList<BeirQuery> ReadQueries(string path)
    {
        var queries = new List<BeirQuery>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, root) in JsonLines(path))
            queries.Add(new BeirQuery(Id(root, path, line, seen), RequiredString(root, "text", path, line)));
        return queries;
    }

    public static Qrels ReadQrels(string path)
    {
        var judgments = new Dictionary<string, Dictionary<string, (int Grade, int Line)>>(StringComparer.Ordinal);
        int lineNumber = 0;
        bool first = true;
        foreach (string raw in ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            string[] columns = raw.Contains('\t')
                ? raw.Split('\t').Select(c => c.Trim()).ToArray()
                : raw.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            bool isHeader = first && columns.Length >= 3 && !int.TryParse(columns[^1], out _);
            first = false;
            if (isHeader) continue;
            var (queryId, docId, gradeText) = columns.Length switch
            {
                3 => (columns[0], columns[1], columns[2]),
                4 => (columns[0], columns[2], columns[3]),
                _ => throw new M3TrainException(
                    $"{path}:{lineNumber}: expected 3 columns 'query-id corpus-id score' (or TREC's 4), found {columns.Length}"),
            };
            if (queryId.Length == 0 || docId.Length == 0)
                throw new M3TrainException($"{path}:{lineNumber}: empty query-id or corpus-id");
            if (!int.TryParse(gradeText, out int grade))
                throw new M3TrainException($"{path}:{lineNumber}: score '{gradeText}' is not an integer relevance grade");
            if (!judgments.TryGetValue(queryId, out var forQuery))
                judgments[queryId] = forQuery = new Dictionary<string, (int, int)>(StringComparer.Ordinal);
            if (forQuery.TryGetValue(docId, out var earlier) && earlier.Grade != grade)
                throw new M3TrainException(
                    $"{path}:{lineNumber}: query '{queryId}', document '{docId}' judged {grade} here and {earlier.Grade} on line {earlier.Line}");
            forQuery[docId] = (grade, lineNumber);
        }
        return new Qrels(judgments.ToDictionary(
            q => q.Key,
            q => (IReadOnlyDictionary<string, int>)q.Value.ToDictionary(d => d.Key, d => d.Value.Grade, StringComparer.Ordinal),
            StringComparer.Ordinal));
    }

    private static IEnumerable<string> ReadLines(string path)
    {
        if (Directory.Exists(path)) throw new M3TrainException($"{path}: is a folder; expected a file");
        if (!File.Exists(path)) throw new M3TrainException($"{path}: file not found");
        IEnumerator<string> lines;
        try
        {
            lines = File.ReadLines(path).GetEnumerator();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message})", e);
        }
        using (lines)
        {
            while (true)
            {
                try
                {
                    if (!lines.MoveNext()) yield break;
                }
                catch (IOException e)
                {
                    throw new M3TrainException($"{path}: cannot read ({e.Message})", e);
                }
                yield return lines.Current;
            }
        }
    }

    private static IEnumerable<(int Line, JsonElement Root)> JsonLines(string path)
    {
        int lineNumber = 0;
        foreach (string raw in ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            JsonElement root;
            try
            {
                using var document = JsonDocument.Parse(raw);
                root = document.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new M3TrainException($"{path}:{lineNumber}: not a JSON object ({e.Message})");
            }
            if (root.ValueKind != JsonValueKind.Object)
                throw new M3TrainException($"{path}:{lineNumber}: expected a JSON object, found {root.ValueKind}");
            yield return (lineNumber, root);
        }
    }

    private static string Id(JsonElement root, string path, int line, Dictionary<string, int> seen)
    {
        if (!root.TryGetProperty("_id", out var value))
            throw new M3TrainException($"{path}:{line}: missing \"_id\"");
        string id = value.ValueKind switch
        {
            JsonValueKind.String => value.GetString()!,
            JsonValueKind.Number => value.GetRawText(),
            _ => throw new M3TrainException($"{path}:{line}: \"_id\" must be a string or a number, found {value.ValueKind}"),
        };
        if (id.Length == 0) throw new M3TrainException($"{path}:{line}: \"_id\" is empty");
        if (seen.TryGetValue(id, out int earlier))
            throw new M3TrainException($"{path}:{line}: \"_id\" '{id}' repeats line {earlier}");
        seen[id] = line;
        return id;
    }

    private static string RequiredString(JsonElement root, string key, string path, int line)
    {
        if (!root.TryGetProperty(key, out var value))
            throw new M3TrainException($"{path}:{line}: missing \"{key}\"");
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new M3TrainException($"{path}:{line}: \"{key}\" must be a string, found {value.ValueKind}");
    }

    private static string OptionalString(JsonElement root, string key, string path, int line) =>
        !root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null ? "" : RequiredString(root, key, path, line);
}
