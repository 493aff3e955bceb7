using System.CommandLine;
using M3Train.Checkpoints;
using M3Train.Eval;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Cli;

/// <summary>The inference verbs' option declarations, and the checkpoint loading of <c>encode</c> and <c>score</c>.</summary>
public static class ModelOptions
{
    public static Option<int> BatchSize()
    {
        var option = new Option<int>("--batch-size")
        {
            Description = "Texts per forward pass (sorted by length, so a batch holds similar lengths).",
            DefaultValueFactory = _ => 256,
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1) result.AddError("--batch-size must be at least 1.");
        });
        return option;
    }

    /// <summary>A token limit (FlagEmbedding's default 512), at least 2 for &lt;s&gt; and &lt;/s&gt;.</summary>
    public static Option<int> MaxLength(string name, string description)
    {
        var option = new Option<int>(name) { Description = description, DefaultValueFactory = _ => 512 };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 2) result.AddError($"{name} must be at least 2 (room for <s> and </s>).");
        });
        return option;
    }

    /// <summary>The instruction queries were trained with, prepended before encoding them (FlagEmbedding's <c>query_instruction_for_retrieval</c>).</summary>
    public static Option<string?> QueryInstruction() => new("--query-instruction")
    {
        Description = "Prepended to every query before it is encoded (encode: to every text; inspect: to the queries of fine-tuning rows), " +
                      "as FlagEmbedding's query_instruction_for_retrieval: the instruction the model was trained with (data.query_instruction or the rows' prompt).",
    };

    public static Option<string> Precision() => new Option<string>("--precision")
    {
        Description = "Matmul precision: fp32, bf16 or fp16 (weights stay fp32; LayerNorm, scores and outputs in fp32).",
        DefaultValueFactory = _ => "fp32",
    }.AcceptOnlyFromAmong("fp32", "bf16", "fp16");

    /// <summary>The compute precision a <c>--precision</c> value names.</summary>
    public static ComputePrecision Compute(string precision) => precision switch
    {
        "bf16" => ComputePrecision.BFloat16,
        "fp16" => ComputePrecision.Float16,
        _ => ComputePrecision.Float32,
    };

    /// <summary>Loads checkpoint and tokenizer and places the model on the device; the checkpoint owns the model.</summary>
    public static (M3Checkpoint Checkpoint, M3TextInference Inference) Load(ModelRun run)
    {
        var folder = run.Model;
        var (device, precision) = ModelInference.Prepare(run);
        XlmrTokenizer tokenizer;
        try
        {
            tokenizer = XlmrTokenizer.FromFolder(folder.FullName);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new M3TrainException(e.Message, e);
        }
        var checkpoint = M3Checkpoint.Load(folder.FullName);
        checkpoint.Model.to(device);
        checkpoint.Model.Precision = precision;
        return (checkpoint, new M3TextInference(checkpoint.Model, tokenizer, device));
    }
}
