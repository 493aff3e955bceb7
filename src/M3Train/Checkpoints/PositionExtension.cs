using System.Text.Json;
using System.Text.Json.Nodes;
using M3Train.Model;
using M3Train.Runtime;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>What <see cref="PositionExtension.Extend"/> did.</summary>
/// <param name="Key">The position table's key in the weights file.</param>
/// <param name="OldPositions">Rows before (max_position_embeddings of the source).</param>
/// <param name="NewPositions">Rows after.</param>
/// <param name="WeightsFile">The weights file written (always model.safetensors).</param>
public sealed record PositionExtensionResult(string Key, int OldPositions, int NewPositions, string WeightsFile);

/// <summary>
/// Grows the position table of an XLM-R checkpoint so the model takes longer texts (docs/METHOD.md, "Pretraining": BGE-M3
/// extends XLM-R from 514 to 8194 positions, 8192 tokens, before pretraining). Works on the files, not on a
/// model: every other tensor (encoder, <c>lm_head.*</c>, <c>pooler.*</c>, unknown keys) is written back with its
/// name, order and dtype, and every other file of the folder (heads, tokenizer, extra configs) is copied.
/// <c>config.json</c> changes only in <c>max_position_embeddings</c>; <c>tokenizer_config.json</c>'s
/// <c>model_max_length</c> follows when it was the old table's limit. Position rows 0..pad_token_id are the
/// reserved ones (XLM-R numbers tokens from pad_token_id + 1) and stay as they are.
/// The output folder is written under a temporary name and renamed into place.
/// </summary>
public static class PositionExtension
{
    const string TableKey = "embeddings.position_embeddings.weight";
    const string PositionIdsKey = "embeddings.position_ids";

    /// <summary>Writes a copy of <paramref name="modelDirectory"/> with <paramref name="maxPositions"/> position rows into <paramref name="outputDirectory"/>.</summary>
    /// <param name="force">Replace an existing output folder; otherwise an existing one is an error.</param>
    public static PositionExtensionResult Extend(string modelDirectory, string outputDirectory, int maxPositions,
        PositionExtensionMethod method, bool force = false)
    {
        string source = Path.GetFullPath(modelDirectory.TrimEnd('/'));
        string target = Path.GetFullPath(outputDirectory.TrimEnd('/'));
        if (source == target) throw new M3TrainException($"--output {outputDirectory}: must differ from --model.");
        if (File.Exists(target)) throw new M3TrainException($"--output {outputDirectory}: is a file.");
        if (Directory.Exists(target) && !force)
            throw new M3TrainException($"--output {outputDirectory}: exists; pass --force to replace it.");
        string configPath = Path.Combine(source, M3Keys.ConfigFile);
        if (!File.Exists(configPath)) throw new M3TrainException($"{modelDirectory}: no {M3Keys.ConfigFile}.");
        var config = XlmRobertaConfig.Load(configPath);
        int old = config.MaxPositionEmbeddings;
        if (maxPositions <= old)
            throw new M3TrainException($"--max-positions {maxPositions}: must exceed the model's max_position_embeddings {old} ({configPath}).");
        if (maxPositions > XlmRobertaConfig.MaxPositions)
            throw new M3TrainException($"--max-positions {maxPositions}: at most {XlmRobertaConfig.MaxPositions} (a table of {XlmRobertaConfig.MaxPositions - 2} tokens; BGE-M3 uses 8194).");

        string parent = Path.GetDirectoryName(target) ?? throw new M3TrainException($"{outputDirectory}: cannot write into a file-system root.");
        Directory.CreateDirectory(parent);
        RemoveStaleStaging(parent, Path.GetFileName(target));
        string staging = Path.Combine(parent, $"{StagingPrefix(Path.GetFileName(target))}{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            string key = WriteWeights(source, staging, config, maxPositions, method);
            WriteConfig(configPath, Path.Combine(staging, M3Keys.ConfigFile), maxPositions);
            CopyOtherFiles(source, staging, old - config.PadTokenId - 1, maxPositions - config.PadTokenId - 1);
            Text.TokenizerFiles.MakePortable(Path.Combine(staging, Text.TokenizerFiles.ConfigFile));
            SentenceTransformersFiles.Write(staging, config with { MaxPositionEmbeddings = maxPositions }, target, source);
            AtomicFolder.Replace(staging, target);
            Log.Information("Extended {Key} from {Old} to {New} rows ({Method}) into {Output}", key, old, maxPositions,
                method.ToString().ToLowerInvariant(), target);
            return new PositionExtensionResult(key, old, maxPositions, Path.Combine(target, M3Keys.SafetensorsFile));
        }
        catch
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    static string StagingPrefix(string targetName) => $".{targetName}.extending-";

    /// <summary>A run killed mid-write (e.g. by the OOM killer) could not remove its staging folder; the next run does.</summary>
    static void RemoveStaleStaging(string parent, string targetName)
    {
        foreach (string stale in Directory.EnumerateDirectories(parent, StagingPrefix(targetName) + "*"))
        {
            Log.Information("Removing {Folder}, left by an extend-positions run that did not finish", stale);
            Directory.Delete(stale, recursive: true);
        }
    }

    /// <summary>
    /// The table [P, D] grown to [<paramref name="maxPositions"/>, D] (same dtype and device). Rows
    /// 0..<paramref name="paddingIdx"/> are reserved and kept; see <see cref="PositionExtensionMethod"/> for the rest.
    /// </summary>
    public static Tensor ExtendTable(Tensor table, int maxPositions, int paddingIdx, PositionExtensionMethod method)
    {
        long old = table.shape[0];
        long first = paddingIdx + 1;
        long learned = old - first;
        if (table.dim() != 2 || learned < 2 || maxPositions <= old)
            throw new ArgumentException($"cannot extend a [{string.Join(", ", table.shape)}] table with {first} reserved rows to {maxPositions} rows");
        using var scope = NewDisposeScope();
        var reserved = table[TensorIndex.Slice(0, first)];                                    // [first, D]
        var rows = table[TensorIndex.Slice(first, old)];                                      // [P-first, D]
        long wanted = maxPositions - first;
        Tensor grown;
        if (method == PositionExtensionMethod.Copy)
        {
            var index = arange(wanted, dtype: ScalarType.Int64, device: table.device).remainder(learned);
            grown = rows.index_select(0, index);                                              // [P'-first, D]
        }
        else
        {
            var at = arange(wanted, dtype: ScalarType.Float64, device: table.device) * ((double)(learned - 1) / (wanted - 1));
            var below = at.floor().to(ScalarType.Int64).clamp_max(learned - 2);
            var weight = (at - below.to(ScalarType.Float64)).unsqueeze(1);                    // [P'-first, 1]
            var lower = rows.index_select(0, below).to(ScalarType.Float64);
            var upper = rows.index_select(0, below + 1).to(ScalarType.Float64);
            grown = (lower * (1 - weight) + upper * weight).to(table.dtype);                  // [P'-first, D]
        }
        return cat([reserved, grown], 0).contiguous().MoveToOuterDisposeScope();              // [P', D]
    }

    static string WriteWeights(string source, string staging, XlmRobertaConfig config, int maxPositions, PositionExtensionMethod method)
    {
        var (path, tensors) = ReadWeights(source);
        try
        {
            string? tableKey = null;
            for (int i = 0; i < tensors.Count; i++)
            {
                var (key, tensor) = tensors[i];
                string name = key.StartsWith(CheckpointLayout.MaskedLmPrefix, StringComparison.Ordinal) ? key[CheckpointLayout.MaskedLmPrefix.Length..] : key;
                if (name == TableKey)
                {
                    if (tensor.dim() != 2 || tensor.shape[0] != config.MaxPositionEmbeddings)
                        throw new M3TrainException($"{path}: {key} is [{string.Join(", ", tensor.shape)}] but config.json says max_position_embeddings {config.MaxPositionEmbeddings}.");
                    tensors[i] = new(key, ExtendTable(tensor, maxPositions, config.PadTokenId, method));
                    tensor.Dispose();
                    tableKey = key;
                }
                else if (name == PositionIdsKey)
                {
                    // HF's buffer of 0..P-1, saved by older transformers versions; it must cover the new table.
                    tensors[i] = new(key, arange(maxPositions, dtype: tensor.dtype).unsqueeze(0));  // [1, P']
                    tensor.Dispose();
                }
            }
            if (tableKey is null) throw new M3TrainException($"{path}: no {TableKey} (with or without '{CheckpointLayout.MaskedLmPrefix}').");
            SafetensorsFile.Write(Path.Combine(staging, M3Keys.SafetensorsFile), tensors);
            return tableKey;
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
    }

    /// <summary>
    /// The encoder tensors in file order. A <c>pytorch_model.bin</c> is read and written back as <c>model.safetensors</c>
    /// (PyBridge's full-model pickles load in transformers as NaNs; see TORCHSHARP.md).
    /// </summary>
    static (string Path, List<KeyValuePair<string, Tensor>> Tensors) ReadWeights(string source)
    {
        using var file = M3CheckpointLoader.OpenEncoder(source);
        var tensors = file.ReadAll();
        if (file is not TorchPickleReader) return (file.Path, tensors);
        Log.Information("{Pickle}: read; the extended weights are written as {File}", file.Path, M3Keys.SafetensorsFile);
        return (file.Path, [.. tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal)]);
    }

    static void WriteConfig(string sourcePath, string targetPath, int maxPositions)
    {
        var root = (JsonObject)JsonNode.Parse(File.ReadAllText(sourcePath))!;
        root["max_position_embeddings"] = maxPositions;
        File.WriteAllText(targetPath, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Copies every file but the config and the weights; a tokenizer limit equal to the old table's token limit follows the new one.</summary>
    static void CopyOtherFiles(string source, string staging, int oldTokens, int newTokens)
    {
        string[] replaced = [M3Keys.ConfigFile, M3Keys.SafetensorsFile, M3Keys.PickleFile];
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(source, file);
            if (replaced.Contains(relative)) continue;
            string destination = Path.Combine(staging, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            if (relative == "tokenizer_config.json" && TokenizerLimit(file, oldTokens, newTokens) is { } updated)
                File.WriteAllText(destination, updated);
            else
                File.Copy(file, destination);
        }
    }

    static string? TokenizerLimit(string path, int oldTokens, int newTokens)
    {
        JsonNode? parsed;
        try
        {
            parsed = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new M3TrainException($"{path}: not valid JSON ({e.Message}); fix or remove it.", e);
        }
        if (parsed is not JsonObject root
            || root["model_max_length"] is not JsonValue limit
            || !limit.TryGetValue<long>(out long value)
            || value != oldTokens)
            return null;
        root["model_max_length"] = newTokens;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}
