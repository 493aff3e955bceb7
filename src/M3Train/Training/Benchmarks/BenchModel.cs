using System.Text.Json.Nodes;
using M3Train.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Benchmarks;

/// <summary>The randomly initialized model a benchmark runs, built as the trainer would set it up.</summary>
public static class BenchModel
{
    /// <summary>An <see cref="M3Model"/> of <paramref name="config"/>'s shape on <paramref name="device"/>, seeded.</summary>
    public static M3Model Create(XlmRobertaConfig config, BenchSettings s, Device device, ComputePrecision precision)
    {
        CheckLengths(config, s);
        manual_seed(s.Seed);
        var model = new M3Model(config);
        model.to(device);
        model.Precision = precision;
        model.GradientCheckpointing = s.Checkpointing;
        model.Backbone.DropoutSeed = s.Seed;
        return model;
    }

    /// <summary>Rejects texts longer than the preset's positions allow, naming the option.</summary>
    public static void CheckLengths(XlmRobertaConfig config, BenchSettings s)
    {
        int longest = Math.Max(s.QueryTokens, s.PassageTokens);
        if (longest > config.MaxTokens)
            throw new M3TrainException(
                $"--preset {s.Preset} takes at most {config.MaxTokens} tokens per text, asked for {longest}; use --preset bge-m3 for up to 8192.");
    }

    public static JsonObject Describe(XlmRobertaConfig config, M3Model model) => new()
    {
        ["vocab_size"] = config.VocabSize,
        ["hidden_size"] = config.HiddenSize,
        ["layers"] = config.NumHiddenLayers,
        ["heads"] = config.NumAttentionHeads,
        ["intermediate_size"] = config.IntermediateSize,
        ["max_tokens"] = config.MaxTokens,
        ["parameters"] = model.parameters().Sum(p => p.numel()),
    };
}
