using System.Text.Json;
using System.Text.Json.Serialization;

namespace M3Train.Onnx;

/// <summary>
/// The XLM-RoBERTa values the ONNX graph needs, named as in HF's <c>config.json</c> (snake_case in JSON).
/// Defaults are BGE-M3's where it has one value for every checkpoint.
/// </summary>
public sealed record OnnxEncoderConfig
{
    /// <summary>Vocabulary size V (BGE-M3: 250002).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Hidden size d (BGE-M3: 1024).</summary>
    public required int HiddenSize { get; init; }

    /// <summary>Number of transformer layers (BGE-M3: 24).</summary>
    public required int NumHiddenLayers { get; init; }

    /// <summary>Attention heads; must divide <see cref="HiddenSize"/> (BGE-M3: 16).</summary>
    public required int NumAttentionHeads { get; init; }

    /// <summary>FFN inner size (BGE-M3: 4096).</summary>
    public required int IntermediateSize { get; init; }

    /// <summary>Rows of the position table (BGE-M3: 8194, so 8192 tokens: positions start at pad_token_id + 1).</summary>
    public required int MaxPositionEmbeddings { get; init; }

    /// <summary>LayerNorm epsilon; default 1e-5.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary>Id of <c>&lt;pad&gt;</c>, also the position padding index; default 1.</summary>
    public int PadTokenId { get; init; } = 1;

    /// <summary>
    /// Ids whose sparse weight is zeroed: <c>&lt;s&gt;</c>, <c>&lt;pad&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;unk&gt;</c>;
    /// default [0, 1, 2, 3], the XLM-R layout (HF's config has no unk id, so it is not read from there).
    /// </summary>
    public IReadOnlyList<int> SpecialTokenIds { get; init; } = [0, 1, 2, 3];

    /// <summary>Longest input in tokens the positions allow: max_position_embeddings - pad_token_id - 1.</summary>
    [JsonIgnore]
    public int MaxTokens => MaxPositionEmbeddings - PadTokenId - 1;

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    /// <summary>Reads HF's <c>config.json</c> of an XLM-R encoder; refuses activations and position types the graph does not write.</summary>
    public static OnnxEncoderConfig FromHfConfig(string configJsonPath)
    {
        if (!File.Exists(configJsonPath))
            throw new M3OnnxException($"{configJsonPath}: not found (an HF XLM-R config.json is needed)");
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(configJsonPath));
            root = doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new M3OnnxException($"{configJsonPath}: not valid JSON ({e.Message})", e);
        }

        int Int(string key)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
                throw new M3OnnxException($"{configJsonPath}: key '{key}' is missing or not an integer");
            return i;
        }

        string? Text(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        string act = Text("hidden_act") ?? "gelu";
        if (act != "gelu")
            throw new M3OnnxException($"{configJsonPath}: hidden_act '{act}' is not supported (the exporter writes XLM-R's exact erf GELU, 'gelu')");
        string positions = Text("position_embedding_type") ?? "absolute";
        if (positions != "absolute")
            throw new M3OnnxException($"{configJsonPath}: position_embedding_type '{positions}' is not supported (only 'absolute')");

        return new OnnxEncoderConfig
        {
            VocabSize = Int("vocab_size"),
            HiddenSize = Int("hidden_size"),
            NumHiddenLayers = Int("num_hidden_layers"),
            NumAttentionHeads = Int("num_attention_heads"),
            IntermediateSize = Int("intermediate_size"),
            MaxPositionEmbeddings = Int("max_position_embeddings"),
            LayerNormEps = root.TryGetProperty("layer_norm_eps", out var eps) && eps.ValueKind == JsonValueKind.Number ? eps.GetDouble() : 1e-5,
            PadTokenId = root.TryGetProperty("pad_token_id", out var pad) && pad.ValueKind == JsonValueKind.Number ? pad.GetInt32() : 1,
        };
    }

    internal void Validate()
    {
        if (VocabSize <= 0 || HiddenSize <= 0 || NumHiddenLayers <= 0 || NumAttentionHeads <= 0 || IntermediateSize <= 0)
            throw new M3OnnxException($"model config: sizes must be positive (vocab_size {VocabSize}, hidden_size {HiddenSize}, num_hidden_layers {NumHiddenLayers}, num_attention_heads {NumAttentionHeads}, intermediate_size {IntermediateSize})");
        if (HiddenSize % NumAttentionHeads != 0)
            throw new M3OnnxException($"model config: hidden_size {HiddenSize} is not a multiple of num_attention_heads {NumAttentionHeads}");
        if (MaxTokens < 2)
            throw new M3OnnxException($"model config: max_position_embeddings {MaxPositionEmbeddings} leaves no room for tokens after pad_token_id {PadTokenId}");
    }
}
