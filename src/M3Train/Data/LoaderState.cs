using System.Text.Json;

namespace M3Train.Data;

/// <summary>
/// Where a <see cref="TrainDataLoader"/> stands: the next batch is step <see cref="Step"/> of epoch
/// <see cref="Epoch"/>'s plan. All of the pipeline's randomness is a function of (seed, epoch, dataset, bin, row)
/// (<see cref="DataRandom"/>), so the seed is its whole RNG state; <see cref="PlanSignature"/> makes a restore
/// onto other data or other batch sizes fail instead of silently training on different batches.
/// </summary>
public sealed record LoaderState(int Epoch, int Step, long Seed, string PlanSignature)
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static LoaderState FromJson(string json) =>
        JsonSerializer.Deserialize<LoaderState>(json, Json) ?? throw new M3TrainException("data loader state: empty JSON");
}
