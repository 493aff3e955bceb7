using System.CommandLine;
using System.Text.Json.Nodes;
using M3Train.Cli;
using M3Train.Tests.Eval;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary>
/// <c>--query-instruction</c> of the inference verbs: encoding with it is encoding the prefixed text, while the files a
/// verb writes back keep their queries.
/// </summary>
public sealed class QueryInstructionTests : IDisposable
{
    const string Instruction = "Represent this question for retrieval: ";
    readonly string _root = Directory.CreateTempSubdirectory("m3instruction-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static int Invoke(params string[] args) =>
        Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });

    string Write(string name, IEnumerable<string> lines)
    {
        string path = Path.Combine(_root, name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void EncodeWithTheInstructionIsEncodingThePrefixedText()
    {
        string[] texts = ["what is a river", "who wrote the iliad"];
        string raw = Write("raw.txt", texts), prefixed = Write("prefixed.txt", texts.Select(t => Instruction + t));
        string Encode(string input, params string[] extra)
        {
            string output = Path.Combine(_root, Guid.NewGuid().ToString("N") + ".jsonl");
            Assert.Equal(0, Invoke(["encode", "--model", TinyInference.ModelDir, "--input", input, "--output", output, "--sparse", .. extra]));
            return File.ReadAllText(output);
        }
        string instructed = Encode(raw, "--query-instruction", Instruction);
        Assert.Equal(Encode(prefixed), instructed);
        Assert.NotEqual(Encode(raw), instructed);
    }

    [Fact]
    public void EvalWithTheInstructionIsEvalOnPrefixedQueries()
    {
        var queries = File.ReadLines(TinyInference.Sample("queries.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        string prefixed = Write("queries.jsonl", queries.Select(q =>
        {
            q["text"] = Instruction + q["text"]!.GetValue<string>();
            return q.ToJsonString();
        }));
        JsonNode Modes(string queryFile, params string[] extra)
        {
            string report = Path.Combine(_root, Guid.NewGuid().ToString("N") + ".json");
            Assert.Equal(0, Invoke(["eval", "--model", TinyInference.ModelDir, "--corpus", TinyInference.Sample("corpus.jsonl"), "--queries", queryFile,
                "--qrels", TinyInference.Sample("qrels.tsv"), "--modes", "dense,sparse", "--max-query-length", "32", "--max-passage-length", "32",
                "--output", report, .. extra]));
            return JsonNode.Parse(File.ReadAllText(report))!["modes"]!;
        }
        var instructed = Modes(TinyInference.Sample("queries.jsonl"), "--query-instruction", Instruction);
        Assert.Equal(Modes(prefixed).ToJsonString(), instructed.ToJsonString());
        Assert.NotEqual(Modes(TinyInference.Sample("queries.jsonl")).ToJsonString(), instructed.ToJsonString());
    }

    [Fact]
    public void MineEncodesThePrefixedQueriesAndKeepsTheRowsQueries()
    {
        var rows = File.ReadLines(TinyInference.TrainFile("toy_train_data1.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        string raw = Write("rows.jsonl", rows.Select(r => r.ToJsonString()));
        string prefixed = Write("prefixed.jsonl", rows.Select(r =>
        {
            var copy = r.DeepClone().AsObject();
            copy["query"] = Instruction + r["query"]!.GetValue<string>();
            return copy.ToJsonString();
        }));
        List<JsonObject> Mine(string input, params string[] extra)
        {
            string output = Path.Combine(_root, Guid.NewGuid().ToString("N") + ".jsonl");
            Assert.Equal(0, Invoke(["mine", "--model", TinyInference.ModelDir, "--input", input, "--output", output, "--range", "0-20", "--negatives", "3",
                "--max-query-length", "32", "--max-passage-length", "32", .. extra]));
            return File.ReadLines(output).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        }
        var instructed = Mine(raw, "--query-instruction", Instruction);
        var fromPrefixed = Mine(prefixed);
        Assert.Equal(fromPrefixed.Select(r => r["neg"]!.ToJsonString()), instructed.Select(r => r["neg"]!.ToJsonString()));
        Assert.Equal(rows.Select(r => r["query"]!.GetValue<string>()), instructed.Select(r => r["query"]!.GetValue<string>()));
        Assert.NotEqual(Mine(raw).Select(r => r["neg"]!.ToJsonString()), instructed.Select(r => r["neg"]!.ToJsonString()));
    }
}
