using System.Text.Json.Nodes;
using M3Train.Data;

namespace M3Train.Eval;

/// <summary>One fine-tuning row as read by <see cref="TrainingRowFile"/>: its parsed fields, the JSON object as written (to write back with every field kept), and its line.</summary>
public sealed record TrainingRowRecord(TrainRow Row, JsonObject Json, long Line)
{
    public string Query => Row.Query!;
}
