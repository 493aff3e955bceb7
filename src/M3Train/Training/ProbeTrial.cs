using System.Text.Json;

namespace M3Train.Training;

/// <summary>
/// One trial training step of <see cref="BatchSizeProbe"/>: <see cref="Batch"/> queries of <see cref="QueryLength"/>
/// tokens with G passages each of <see cref="PassageLength"/> tokens (G = <c>data.train_group_size</c>), encoded whole or,
/// with <see cref="SubBatch"/>, in GradCache sub-batches of that many texts.
/// </summary>
public sealed record ProbeTrial(int QueryLength, int PassageLength, int Batch, int? SubBatch)
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ProbeTrial FromJson(string json) =>
        JsonSerializer.Deserialize<ProbeTrial>(json, Json) ?? throw new M3TrainException($"not a probe trial: {json}");

    public override string ToString() =>
        $"{Batch} x (query {QueryLength} + passages {PassageLength})" + (SubBatch is int s ? $", sub-batch {s}" : "");
}
