using System.Text.Json;

namespace M3Train.Training;

/// <summary>
/// What a <see cref="ProbeTrial"/> measured: whether it ran out of memory, the peak memory of its step (device memory in
/// use on CUDA, resident set size on CPU; null where it cannot be read) and the step's wall time.
/// </summary>
public sealed record ProbeTrialResult(bool OutOfMemory, long? PeakBytes, double? StepSeconds, long? GrowthBytes = null)
{
    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static ProbeTrialResult OutOfMemoryResult { get; } = new(true, null, null);

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ProbeTrialResult FromJson(string json) =>
        JsonSerializer.Deserialize<ProbeTrialResult>(json, Json) ?? throw new M3TrainException($"not a probe trial result: {json}");
}
