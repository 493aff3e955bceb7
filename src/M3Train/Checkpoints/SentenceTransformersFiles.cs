using System.Text.Json;
using System.Text.Json.Nodes;
using M3Train.Model;

namespace M3Train.Checkpoints;

/// <summary>
/// The files that make a saved model folder load in sentence-transformers as the dense model, and its model card:
/// <list type="bullet">
/// <item><c>modules.json</c>: Transformer (this folder) → Pooling (<c>1_Pooling</c>) → Normalize, the module list
/// <c>SentenceTransformer(path)</c> builds; without it the library falls back to mean pooling, not M3's dense vector.</item>
/// <item><c>1_Pooling/config.json</c>: CLS pooling over the hidden size (the Pooling module's constructor arguments).</item>
/// <item><c>sentence_bert_config.json</c>: the Transformer module's <c>max_seq_length</c> (all the positions take) and <c>do_lower_case</c>.</item>
/// <item><c>config_sentence_transformers.json</c>: cosine similarity, no prompts.</item>
/// <item><c>README.md</c>: <see cref="ModelCard"/>.</item>
/// </list>
/// Normalize has no files, so it gets no folder (as in BGE-M3's own repository). The normalized CLS vector is the
/// dense representation FlagEmbedding's <c>BGEM3FlagModel</c> returns.
/// </summary>
public static class SentenceTransformersFiles
{
    public const string ModulesFile = "modules.json";
    public const string TransformerConfigFile = "sentence_bert_config.json";
    public const string PoolingFolder = "1_Pooling";
    public const string SettingsFile = "config_sentence_transformers.json";

    /// <summary>The files <see cref="Write"/> puts at the top of the folder (besides <see cref="PoolingFolder"/>).</summary>
    public static readonly IReadOnlyList<string> RootFiles = [ModulesFile, TransformerConfigFile, SettingsFile, ModelCard.FileName];

    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Writes the files into <paramref name="folder"/> (replacing older ones).</summary>
    /// <param name="folder">Where the files go (a staging folder, renamed to <paramref name="target"/> afterwards).</param>
    /// <param name="config">The saved encoder's config.</param>
    /// <param name="target">The folder's final path, for the model card.</param>
    /// <param name="source">The folder the model was loaded from, if any, for the model card.</param>
    public static void Write(string folder, XlmRobertaConfig config, string target, string? source)
    {
        JsonArray modules = [Module(0, "", "Transformer"), Module(1, PoolingFolder, "Pooling"), Module(2, "2_Normalize", "Normalize")];
        WriteJson(Path.Combine(folder, ModulesFile), modules);
        WriteJson(Path.Combine(folder, TransformerConfigFile), new JsonObject
        {
            ["max_seq_length"] = config.MaxTokens,
            ["do_lower_case"] = false,
        });
        Directory.CreateDirectory(Path.Combine(folder, PoolingFolder));
        WriteJson(Path.Combine(folder, PoolingFolder, "config.json"), new JsonObject
        {
            ["word_embedding_dimension"] = config.HiddenSize,
            ["pooling_mode_cls_token"] = true,
            ["pooling_mode_mean_tokens"] = false,
            ["pooling_mode_max_tokens"] = false,
            ["pooling_mode_mean_sqrt_len_tokens"] = false,
            ["pooling_mode_weightedmean_tokens"] = false,
            ["pooling_mode_lasttoken"] = false,
            ["include_prompt"] = true,
        });
        WriteJson(Path.Combine(folder, SettingsFile), new JsonObject
        {
            ["prompts"] = new JsonObject(),
            ["default_prompt_name"] = null,
            ["similarity_fn_name"] = "cosine",
        });
        File.WriteAllText(Path.Combine(folder, ModelCard.FileName), ModelCard.Text(config, target, source));
    }

    static JsonObject Module(int index, string path, string type) => new()
    {
        ["idx"] = index,
        ["name"] = index.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["path"] = path,
        ["type"] = $"sentence_transformers.models.{type}",
    };

    static void WriteJson(string path, JsonNode node) => File.WriteAllText(path, node.ToJsonString(Indented) + "\n");
}
