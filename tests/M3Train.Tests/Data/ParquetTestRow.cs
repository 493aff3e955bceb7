using System.Text.Json.Serialization;

namespace M3Train.Tests.Data;

/// <summary>A fine-tuning row as the tests write it to Parquet (the same columns as JSONL).</summary>
public sealed class ParquetTestRow
{
    [JsonPropertyName("query")] public string? Query { get; set; }
    [JsonPropertyName("pos")] public List<string>? Pos { get; set; }
    [JsonPropertyName("neg")] public List<string>? Neg { get; set; }
    [JsonPropertyName("pos_scores")] public List<float>? PosScores { get; set; }
    [JsonPropertyName("neg_scores")] public List<float>? NegScores { get; set; }
    [JsonPropertyName("prompt")] public string? Prompt { get; set; }
    [JsonPropertyName("type")] public string? Type { get; set; }
}
