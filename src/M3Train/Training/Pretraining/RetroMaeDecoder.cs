using M3Train.Checkpoints;
using M3Train.Model;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// RetroMAE's decoder with enhanced decoding (Xiao et al. 2022; docs/METHOD.md, "RetroMAE"): one transformer layer
/// (<c>layer.*</c>) that reads its input through the <b>encoder's</b> embedding module (word, position and token-type
/// embeddings and their LayerNorm), as the reference does (<c>decoder_embeddings = lm.bert.embeddings</c>). So the
/// decoder loss trains the encoder's embeddings too, the extended position rows included, and the decoder adds one
/// layer's parameters and optimizer state, not a second embedding table.
/// Query stream: the sentence embedding (encoder CLS state) plus the position embedding of every position.
/// Context stream: [sentence embedding, embeddings of tokens 1..L-1 (word + position, LayerNorm)].
/// Each row reads the context through its own attention set (<see cref="EnhancedDecodingMask"/>).
/// Shapes: B texts, L tokens, D hidden. cls [B, D], input_ids [B, L] (the uncorrupted text), visible
/// [B, 1, L, L] → [B, L, D] fp32, to be read out by the encoder's (tied) masked-LM head.
/// </summary>
public sealed class RetroMaeDecoder : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    /// <summary>File the decoder is saved in beside the encoder, to continue pretraining.</summary>
    public const string FileName = "retromae_decoder.safetensors";

    /// <summary>Keys of the embedding copy that decoders saved before the embeddings were shared; loading drops them.</summary>
    const string OwnEmbeddingsPrefix = "embeddings.";

    readonly RetroMaeDecoderLayer layer;
    // The encoder owns the shared module (moves, saves and disposes it): held through a delegate, so that
    // RegisterComponents does not adopt it as a submodule of the decoder (its parameters would then be counted,
    // optimized and saved twice).
    readonly Func<XlmRobertaEmbeddings> _embeddings;
    readonly long _paddingIdx;

    /// <param name="config">The encoder's shape.</param>
    /// <param name="embeddings">The encoder's embedding module, which the decoder reads its input through.</param>
    /// <param name="initSeed">Seed of the fresh weights' own generator, so they do not depend on torch's global one.</param>
    public RetroMaeDecoder(XlmRobertaConfig config, XlmRobertaEmbeddings embeddings, long initSeed = 0) : base(nameof(RetroMaeDecoder))
    {
        layer = new RetroMaeDecoderLayer(config, Compute);
        _embeddings = () => embeddings;
        _paddingIdx = config.PadTokenId;
        RegisterComponents();
        InitializeWeights(config.InitializerRange, initSeed);
    }

    /// <summary>Matmul precision of the layer (weights stay fp32).</summary>
    public ComputeSettings Compute { get; } = new();

    public override Tensor forward(Tensor cls, Tensor inputIds, Tensor visible)
    {
        using var scope = NewDisposeScope();
        var embeddings = _embeddings();
        var sentence = cls.unsqueeze(1);                                                          // [B, 1, D]
        long b = inputIds.shape[0], l = inputIds.shape[1];
        var positions = XlmRobertaEmbeddings.PositionIds(inputIds, _paddingIdx);                  // [B, L]
        var table = embeddings.PositionEmbeddings;
        var queryStream = sentence + table.index_select(0, positions.flatten()).view(b, l, table.shape[1]); // [B, L, D]
        var tokens = embeddings.forward(inputIds);                                                // [B, L, D]
        var context = cat([sentence, tokens[.., 1..]], 1);                                        // [B, L, D]
        return layer.forward(queryStream, context, visible).MoveToOuterDisposeScope();
    }

    /// <summary>Writes the decoder's own parameters (HF-style keys: <c>layer.attention.self.query.weight</c>, ...) as safetensors.</summary>
    public void Save(string path) =>
        SafetensorsFile.Write(path, named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)).ToList());

    /// <summary>
    /// Reads what <see cref="Save"/> wrote; every key must be there with its shape. A file from before the embeddings
    /// were shared also holds <c>embeddings.*</c>: those are dropped, with a warning, as the encoder's embeddings are used.
    /// </summary>
    public void Load(string path)
    {
        var file = SafetensorsFile.Read(path);
        try
        {
            var tensors = file.ToDictionary(kv => kv.Key, kv => kv.Value);
            var dropped = tensors.Keys.Where(k => k.StartsWith(OwnEmbeddingsPrefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            if (dropped.Count > 0)
                Log.Warning("{File}: dropping the decoder's own embedding tables ({Keys}): the decoder now reads through the encoder's embeddings, as RetroMAE does",
                    path, string.Join(", ", dropped));
            var parameters = named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var missing = parameters.Keys.Where(k => !tensors.ContainsKey(k)).ToList();
            var unexpected = tensors.Keys.Where(k => !parameters.ContainsKey(k) && !dropped.Contains(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new M3TrainException($"{path}: not a RetroMAE decoder of this model: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}].");
            using var noGrad = no_grad();
            foreach (var (name, parameter) in parameters)
            {
                var tensor = tensors[name];
                if (!tensor.shape.SequenceEqual(parameter.shape))
                    throw new M3TrainException($"{path}: {name} is [{string.Join(", ", tensor.shape)}], the model's is [{string.Join(", ", parameter.shape)}].");
                parameter.copy_(tensor);
            }
        }
        finally
        {
            foreach (var (_, t) in file) t.Dispose();
        }
    }

    /// <summary>HF's initialization, as the encoder's: normal(0, initializer_range) weights, zero biases, unit LayerNorms.</summary>
    void InitializeWeights(double range, long seed)
    {
        using var noGrad = no_grad();
        using var generator = new Generator((ulong)seed, CPU);
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else nn.init.normal_(p, 0.0, range, generator);
        }
    }
}
