using System.Globalization;
using System.Text;
using System.Text.Json;

namespace M3Train.Eval;

/// <summary>What <see cref="RetrievalEvaluator"/> measured: nDCG@10, Recall@100 and MRR@10 per mode, and how it got there.</summary>
/// <param name="Modes">Per mode, in the requested order.</param>
/// <param name="Documents">Corpus size.</param>
/// <param name="Queries">Queries evaluated (those with a relevant document).</param>
/// <param name="Options">The settings used (max lengths after capping to the model).</param>
/// <param name="CachePath">The corpus encoding cache file, null without a cache.</param>
/// <param name="CacheReused">Whether the corpus encodings came from <paramref name="CachePath"/>.</param>
public sealed record RetrievalEvaluation(
    IReadOnlyList<ModeReport> Modes,
    int Documents,
    int Queries,
    RetrievalEvalOptions Options,
    string? CachePath,
    bool CacheReused)
{
    /// <summary>A plain-text table, one row per mode.</summary>
    public string ToTable()
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"{"mode",-14} {"nDCG@10",8} {"R@100",8} {"MRR@10",8} {"queries",8}");
        foreach (var mode in Modes)
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{mode.Name,-14} {mode.Report.NdcgAt10,8:F4} {mode.Report.RecallAt100,8:F4} {mode.Report.MrrAt10,8:F4} {mode.Report.QueriesEvaluated,8}");
        return text.ToString();
    }

    /// <summary>
    /// <c>{"documents":N,"queries":Q,"top_k":..,"rerank_k":..,"weights":{"dense":..,"sparse":..,"colbert":..},
    /// "max_query_length":..,"max_passage_length":..,"cache":{"path":..,"reused":..},
    /// "modes":{"dense":{"ndcg@10":..,"recall@100":..,"mrr@10":..,"queries_evaluated":..,"queries_without_relevant":..,"queries_without_results":..},...}}</c>
    /// </summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("documents", Documents);
            json.WriteNumber("queries", Queries);
            json.WriteNumber("top_k", Options.TopK);
            json.WriteNumber("rerank_k", Options.RerankK);
            json.WriteStartObject("weights");
            json.WriteNumber("dense", Options.Weights.Dense);
            json.WriteNumber("sparse", Options.Weights.Sparse);
            json.WriteNumber("colbert", Options.Weights.Colbert);
            json.WriteEndObject();
            json.WriteNumber("max_query_length", Options.MaxQueryLength);
            json.WriteNumber("max_passage_length", Options.MaxPassageLength);
            json.WriteStartObject("cache");
            if (CachePath is null) json.WriteNull("path");
            else json.WriteString("path", CachePath);
            json.WriteBoolean("reused", CacheReused);
            json.WriteEndObject();
            json.WriteStartObject("modes");
            foreach (var mode in Modes)
            {
                json.WriteStartObject(mode.Name);
                json.WriteNumber("ndcg@10", mode.Report.NdcgAt10);
                json.WriteNumber("recall@100", mode.Report.RecallAt100);
                json.WriteNumber("mrr@10", mode.Report.MrrAt10);
                json.WriteNumber("queries_evaluated", mode.Report.QueriesEvaluated);
                json.WriteNumber("queries_without_relevant", mode.Report.QueriesWithoutRelevant);
                json.WriteNumber("queries_without_results", mode.Report.QueriesWithoutResults);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
