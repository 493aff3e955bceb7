using System.CommandLine;

namespace M3Train.Cli;

/// <summary>Options that several verbs share, so they read and default the same everywhere.</summary>
public static class CommonOptions
{
    public static Option<string> Device() => new("--device")
    {
        Description = "Where the model runs: cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "cpu",
    };

    /// <summary>libtorch's (and ONNX Runtime's) intra-op threads; null picks <see cref="Runtime.ComputeThreads.Default"/>.</summary>
    public static Option<int?> Threads()
    {
        var option = new Option<int?>("--threads")
        {
            Description = "CPU threads per operator (default: the cores less one for libtorch's inter-op pool and one per data loader, at least 1; the log says which).",
        };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int?>() is < 1) result.AddError("--threads must be at least 1.");
        });
        return option;
    }

    public static Option<FileInfo> Config() => PathOptions.Input("--config", "Run configuration (YAML or JSON).");

    public static Option<string[]> Set() => new("--set")
    {
        Description = "Override a config key: --set section.key=value (repeatable).",
        AllowMultipleArgumentsPerToken = false,
    };

    public static Option<DirectoryInfo> Model(string description = "Checkpoint folder (config.json, model.safetensors or pytorch_model.bin, head files, tokenizer).")
    {
        var option = new Option<DirectoryInfo>("--model") { Description = description, Required = true };
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<DirectoryInfo?>() is not { } folder) return;
            if (File.Exists(folder.FullName)) result.AddError($"--model {folder}: is a file; give the checkpoint folder that holds it.");
            else if (!folder.Exists) result.AddError($"--model {folder}: no such folder.");
        });
        return option;
    }

    /// <summary>The fine-tuning rows a data-preparation verb (mine, teacher-scores) reads and writes back enriched.</summary>
    public static Option<FileInfo> FinetuneRows() =>
        PathOptions.Input("--input", "Fine-tuning JSONL: {\"query\", \"pos\": [...], \"neg\": [...], ...} per line.");
}
