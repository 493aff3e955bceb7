using System.Text.Json;
using M3Train.Eval;
using Xunit;

namespace M3Train.Tests.Eval;

/// <summary>data/beir-sample is what its README says: built from data/train's rows, qrels = each query's positives.</summary>
public class BeirSampleTests
{
    [Fact]
    public void QrelsPointFromEachQueryToItsRowsPositives()
    {
        var data = TinyInference.SampleSet();
        var docText = data.Corpus.ToDictionary(d => d.Id, d => d.Text);
        int rows = 0;
        foreach (string file in new[] { "nq", "toy_train_data1", "nli" })
        {
            var lines = File.ReadAllLines(TinyInference.TrainFile(file + ".jsonl")).Where(l => l.Trim().Length > 0).ToArray();
            for (int i = 0; i < lines.Length; i++, rows++)
            {
                using var row = JsonDocument.Parse(lines[i]);
                string id = $"{file}-{i}";
                Assert.Equal(row.RootElement.GetProperty("query").GetString(), data.Queries.Single(q => q.Id == id).Text);
                var positives = row.RootElement.GetProperty("pos").EnumerateArray().Select(p => p.GetString()!).ToHashSet();
                var judged = data.Qrels.For(id);
                Assert.Equal(positives.Count, judged.Count);
                Assert.All(judged, j => Assert.Contains(docText[j.Key], positives));
            }
        }
        Assert.Equal(rows, data.Queries.Count);
        Assert.Equal(data.Corpus.Count, data.Corpus.Select(d => d.Text).Distinct().Count());
    }
}
