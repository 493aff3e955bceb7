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

    public static Option<FileInfo> Config() => new Option<FileInfo>("--config")
    {
        Description = "Run configuration (YAML or JSON).",
        Required = true,
    }.AcceptExistingOnly();

    public static Option<string[]> Set() => new("--set")
    {
        Description = "Override a config key: --set section.key=value (repeatable).",
        AllowMultipleArgumentsPerToken = false,
    };

    public static Option<DirectoryInfo> Model(string description = "Checkpoint folder (config.json, model.safetensors or pytorch_model.bin, head files, tokenizer).") =>
        new Option<DirectoryInfo>("--model") { Description = description, Required = true }.AcceptExistingOnly();

    /// <summary>The fine-tuning rows a data-preparation verb (mine, teacher-scores) reads and writes back enriched.</summary>
    public static Option<FileInfo> FinetuneRows() => new Option<FileInfo>("--input")
    {
        Description = "Fine-tuning JSONL: {\"query\", \"pos\": [...], \"neg\": [...], ...} per line.",
        Required = true,
    }.AcceptExistingOnly();
}
