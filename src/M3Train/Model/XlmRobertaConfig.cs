using System.Text.Json;
using System.Text.Json.Nodes;

namespace M3Train.Model;

/// <summary>
/// The shape and regularization of an XLM-RoBERTa encoder, read from and written to a Hugging Face
/// <c>config.json</c>. Keys this record does not model (<c>architectures</c>, <c>model_type</c>,
/// <c>transformers_version</c>, ...) are kept in <see cref="Extra"/> and written back on save, so a
/// load/save round trip keeps the file's meaning for other tools.
/// </summary>
public sealed record XlmRobertaConfig
{
    /// <summary><c>vocab_size</c>, V. Default 250002 (XLM-R).</summary>
    public int VocabSize { get; init; } = 250002;

    /// <summary><c>hidden_size</c>, D. Default 768.</summary>
    public int HiddenSize { get; init; } = 768;

    /// <summary><c>num_hidden_layers</c>. Default 12.</summary>
    public int NumHiddenLayers { get; init; } = 12;

    /// <summary><c>num_attention_heads</c>, H; must divide <see cref="HiddenSize"/>. Default 12.</summary>
    public int NumAttentionHeads { get; init; } = 12;

    /// <summary><c>intermediate_size</c>, the FFN width. Default 3072.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary><c>max_position_embeddings</c>; positions start at <c>pad_token_id + 1</c>, so a text takes at most this minus 2 tokens. Default 514.</summary>
    public int MaxPositionEmbeddings { get; init; } = 514;

    /// <summary><c>type_vocab_size</c>. Default 1 (all token type ids are 0).</summary>
    public int TypeVocabSize { get; init; } = 1;

    /// <summary><c>layer_norm_eps</c>. Default 1e-5.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary><c>hidden_dropout_prob</c>: embeddings, attention output and FFN output dropout. Default 0.1.</summary>
    public double HiddenDropoutProb { get; init; } = 0.1;

    /// <summary><c>attention_probs_dropout_prob</c>: dropout on the attention weights. Default 0.1.</summary>
    public double AttentionProbsDropoutProb { get; init; } = 0.1;

    /// <summary><c>pad_token_id</c>, also the position embeddings' padding index. Default 1.</summary>
    public int PadTokenId { get; init; } = 1;

    /// <summary><c>bos_token_id</c> (<c>&lt;s&gt;</c>, the CLS token). Default 0.</summary>
    public int BosTokenId { get; init; } = 0;

    /// <summary><c>eos_token_id</c> (<c>&lt;/s&gt;</c>). Default 2.</summary>
    public int EosTokenId { get; init; } = 2;

    /// <summary><c>hidden_act</c>; only <c>gelu</c> (exact, erf) is supported. Default "gelu".</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary><c>initializer_range</c>: standard deviation of freshly initialized weights. Default 0.02.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary>Every other key of the file, kept verbatim for the write-back. Default: the keys HF needs to pick the architecture.</summary>
    public IReadOnlyDictionary<string, JsonNode?> Extra { get; init; } = DefaultExtra();

    /// <summary>Head dimension D / H.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Id of <c>&lt;unk&gt;</c>; not in HF's config, fixed by the fairseq layout XLM-R uses.</summary>
    public int UnkTokenId => 3;

    /// <summary>The longest text in tokens, &lt;s&gt; and &lt;/s&gt; included: positions start after the padding index.</summary>
    public int MaxTokens => MaxPositionEmbeddings - PadTokenId - 1;

    /// <summary>The four ids whose lexical weight is always 0: <c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>, <c>&lt;pad&gt;</c>, <c>&lt;unk&gt;</c>.</summary>
    public IReadOnlyList<long> UnusedLexicalIds => [BosTokenId, EosTokenId, PadTokenId, UnkTokenId];

    /// <summary>A 2-layer, 32-wide model with a 1502-token vocabulary, for tests (the golden fixtures' shape).</summary>
    public static XlmRobertaConfig Tiny() => new()
    {
        VocabSize = 1502, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 4,
        IntermediateSize = 64, MaxPositionEmbeddings = 130,
    };

    /// <summary>xlm-roberta-base: D 768, 12 layers, 12 heads, FFN 3072, 514 positions.</summary>
    public static XlmRobertaConfig Base() => new();

    /// <summary>xlm-roberta-large: D 1024, 24 layers, 16 heads, FFN 4096, 514 positions.</summary>
    public static XlmRobertaConfig Large() => new()
    {
        HiddenSize = 1024, NumHiddenLayers = 24, NumAttentionHeads = 16, IntermediateSize = 4096,
    };

    /// <summary>BAAI/bge-m3: xlm-roberta-large with 8194 positions (8192 tokens).</summary>
    public static XlmRobertaConfig BgeM3() => Large() with { MaxPositionEmbeddings = 8194 };

    /// <summary>Largest hidden size, FFN width, vocabulary, position table and layer count accepted: far above any
    /// XLM-R-family model, low enough that a hostile config.json cannot ask for an absurd model.</summary>
    public const int MaxHiddenSize = 1 << 16, MaxIntermediateSize = 1 << 20, MaxVocabSize = 1 << 24, MaxPositions = 1 << 20,
        MaxLayers = 1024, MaxTypeVocabSize = 1 << 10;

    const long MaxFileBytes = 16L << 20;

    /// <summary>Reads a Hugging Face <c>config.json</c>; errors name the file and the key.</summary>
    public static XlmRobertaConfig Load(string path)
    {
        JsonObject root;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxFileBytes)
                throw new M3TrainException($"{path}: {length} bytes; a config.json is a few kilobytes (at most {MaxFileBytes >> 20} MiB is read).");
            root = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new M3TrainException($"{path}: expected a JSON object.");
        }
        catch (JsonException e)
        {
            throw new M3TrainException($"{path}: not valid JSON ({e.Message}).", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new M3TrainException($"{path}: cannot read ({e.Message}).", e);
        }
        var reader = new KeyReader(path, root);
        var config = new XlmRobertaConfig
        {
            VocabSize = reader.Int("vocab_size"),
            HiddenSize = reader.Int("hidden_size"),
            NumHiddenLayers = reader.Int("num_hidden_layers"),
            NumAttentionHeads = reader.Int("num_attention_heads"),
            IntermediateSize = reader.Int("intermediate_size"),
            MaxPositionEmbeddings = reader.Int("max_position_embeddings"),
            TypeVocabSize = reader.Int("type_vocab_size", 1),
            LayerNormEps = reader.Double("layer_norm_eps", 1e-5),
            HiddenDropoutProb = reader.Double("hidden_dropout_prob", 0.1),
            AttentionProbsDropoutProb = reader.Double("attention_probs_dropout_prob", 0.1),
            PadTokenId = reader.Int("pad_token_id", 1),
            BosTokenId = reader.Int("bos_token_id", 0),
            EosTokenId = reader.Int("eos_token_id", 2),
            HiddenAct = reader.String("hidden_act", "gelu"),
            InitializerRange = reader.Double("initializer_range", 0.02),
            Extra = reader.Rest(),
        };
        config.Validate(path);
        return config;
    }

    /// <summary>Writes <c>config.json</c> with sorted keys, as transformers does.</summary>
    public void Save(string path)
    {
        var all = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal);
        foreach (var (key, value) in Extra) all[key] = value?.DeepClone();
        all["vocab_size"] = VocabSize;
        all["hidden_size"] = HiddenSize;
        all["num_hidden_layers"] = NumHiddenLayers;
        all["num_attention_heads"] = NumAttentionHeads;
        all["intermediate_size"] = IntermediateSize;
        all["max_position_embeddings"] = MaxPositionEmbeddings;
        all["type_vocab_size"] = TypeVocabSize;
        all["layer_norm_eps"] = LayerNormEps;
        all["hidden_dropout_prob"] = HiddenDropoutProb;
        all["attention_probs_dropout_prob"] = AttentionProbsDropoutProb;
        all["pad_token_id"] = PadTokenId;
        all["bos_token_id"] = BosTokenId;
        all["eos_token_id"] = EosTokenId;
        all["hidden_act"] = HiddenAct;
        all["initializer_range"] = InitializerRange;
        var root = new JsonObject();
        foreach (var (key, value) in all) root[key] = value;
        File.WriteAllText(path, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Rejects configs this encoder cannot run; <paramref name="source"/> names the file in the message.</summary>
    public void Validate(string source = "config")
    {
        void Require(bool ok, string key, string why)
        {
            if (!ok) throw new M3TrainException($"{source}: {key}: {why}");
        }
        Require(HiddenAct == "gelu", "hidden_act", $"'{HiddenAct}' is not supported; XLM-RoBERTa uses exact (erf) 'gelu'.");
        Require(VocabSize > UnkTokenId && VocabSize <= MaxVocabSize, "vocab_size", $"{VocabSize} must be in {UnkTokenId + 1}..{MaxVocabSize} (ids 0-3 are <s>, <pad>, </s>, <unk>).");
        Require(HiddenSize is > 0 and <= MaxHiddenSize, "hidden_size", $"{HiddenSize} must be in 1..{MaxHiddenSize}.");
        Require(NumHiddenLayers is > 0 and <= MaxLayers, "num_hidden_layers", $"{NumHiddenLayers} must be in 1..{MaxLayers}.");
        Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0, "num_attention_heads",
            $"{NumAttentionHeads} must be positive and divide hidden_size {HiddenSize}.");
        Require(IntermediateSize is > 0 and <= MaxIntermediateSize, "intermediate_size", $"{IntermediateSize} must be in 1..{MaxIntermediateSize}.");
        Require(PadTokenId >= 0 && PadTokenId < VocabSize, "pad_token_id", "must be a vocabulary id.");
        Require(MaxPositionEmbeddings > PadTokenId + 2 && MaxPositionEmbeddings <= MaxPositions, "max_position_embeddings",
            $"{MaxPositionEmbeddings} must exceed pad_token_id + 2 = {PadTokenId + 2} and be at most {MaxPositions}.");
        Require(TypeVocabSize is > 0 and <= MaxTypeVocabSize, "type_vocab_size", $"{TypeVocabSize} must be in 1..{MaxTypeVocabSize}.");
        Require(double.IsFinite(LayerNormEps) && LayerNormEps is > 0 and < 1, "layer_norm_eps", $"{LayerNormEps} must be a small positive number (XLM-R: 1e-5).");
        Require(HiddenDropoutProb is >= 0 and < 1, "hidden_dropout_prob", "must be in [0, 1).");
        Require(AttentionProbsDropoutProb is >= 0 and < 1, "attention_probs_dropout_prob", "must be in [0, 1).");
        Require(double.IsFinite(InitializerRange) && InitializerRange >= 0, "initializer_range", $"{InitializerRange} must be a finite, non-negative standard deviation.");
        Require(BosTokenId >= 0 && BosTokenId < VocabSize, "bos_token_id", "must be a vocabulary id.");
        Require(EosTokenId >= 0 && EosTokenId < VocabSize, "eos_token_id", "must be a vocabulary id.");
        if (Extra.TryGetValue("position_embedding_type", out var type) && type is not null && type.ToString() != "absolute")
            Require(false, "position_embedding_type", $"'{type}' is not supported; only 'absolute'.");
    }

    static Dictionary<string, JsonNode?> DefaultExtra() => new()
    {
        ["architectures"] = new JsonArray("XLMRobertaModel"),
        ["model_type"] = "xlm-roberta",
        ["position_embedding_type"] = "absolute",
    };

    /// <summary>Takes the modelled keys out of a config object, leaving the rest for <see cref="Extra"/>.</summary>
    sealed class KeyReader(string path, JsonObject root)
    {
        readonly HashSet<string> _taken = [];

        JsonValue? Take(string key)
        {
            _taken.Add(key);
            if (!root.TryGetPropertyValue(key, out var node) || node is null) return null;
            return node as JsonValue ?? throw new M3TrainException($"{path}: {key}: expected a number or string, got {node.ToJsonString()}.");
        }

        public int Int(string key, int? fallback = null)
        {
            var v = Take(key);
            if (v is null) return fallback ?? throw new M3TrainException($"{path}: required key '{key}' is missing.");
            if (v.TryGetValue<int>(out int i)) return i;
            if (v.TryGetValue<double>(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue) return (int)d;
            throw new M3TrainException($"{path}: {key}: expected an integer, got {v.ToJsonString()}.");
        }

        public double Double(string key, double fallback)
        {
            var v = Take(key);
            if (v is null) return fallback;
            if (v.TryGetValue<double>(out double d)) return d;
            throw new M3TrainException($"{path}: {key}: expected a number, got {v.ToJsonString()}.");
        }

        public string String(string key, string fallback)
        {
            var v = Take(key);
            if (v is null) return fallback;
            if (v.TryGetValue<string>(out string? s)) return s;
            throw new M3TrainException($"{path}: {key}: expected a string, got {v.ToJsonString()}.");
        }

        public Dictionary<string, JsonNode?> Rest() =>
            root.Where(kv => !_taken.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value?.DeepClone());
    }
}
