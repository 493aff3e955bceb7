using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The XLM-RoBERTa encoder without pooler (HF <c>XLMRobertaModel</c>; M3 never uses the pooler, and
/// checkpoints carry its weights through unchanged). Parameter names are HF's state-dict keys:
/// <c>embeddings.word_embeddings.weight</c>, <c>encoder.layer.N.attention.self.query.weight</c>, ...
/// Shapes: B batch, L tokens, D hidden, V vocabulary.
/// input_ids [B, L] int64, attention_mask [B, L] (1 = token, 0 = padding) → last_hidden_state [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaModel : nn.Module<Tensor, Tensor, Tensor>
{
    readonly XlmRobertaEmbeddings embeddings;
    readonly XlmRobertaEncoder encoder;
    readonly bool _hasDropout;
    long _forwardCount;

    public XlmRobertaModel(XlmRobertaConfig config) : base(nameof(XlmRobertaModel))
    {
        config.Validate();
        Config = config;
        embeddings = new XlmRobertaEmbeddings(config);
        encoder = new XlmRobertaEncoder(config, Compute);
        _hasDropout = config.HiddenDropoutProb > 0 || config.AttentionProbsDropoutProb > 0;
        RegisterComponents();
        InitializeWeights();
    }

    public XlmRobertaConfig Config { get; }

    /// <summary>Precision and checkpointing flags, shared by every layer.</summary>
    public ComputeSettings Compute { get; } = new();

    /// <summary>The layer stack (<c>encoder.*</c>).</summary>
    public XlmRobertaEncoder Encoder => encoder;

    /// <summary>Base seed of dropout in training mode; forward i without an explicit seed uses <c>Mix(DropoutSeed, i)</c>. Default 0.</summary>
    public long DropoutSeed { get; set; }

    /// <summary>The word embedding matrix [V, D] (the masked-LM decoder is tied to it).</summary>
    public Parameter WordEmbeddings => embeddings.WordEmbeddings;

    /// <summary>The embedding module (word, position, token type, LayerNorm); RetroMAE's decoder reads its input through it.</summary>
    public XlmRobertaEmbeddings Embeddings => embeddings;

    public override Tensor forward(Tensor inputIds, Tensor attentionMask) => Forward(inputIds, attentionMask);

    /// <summary>
    /// last_hidden_state [B, L, D] fp32. In training mode with dropout, <paramref name="dropoutSeed"/>
    /// fixes every dropout mask of this call (pass the same seed to replay it, e.g. for GradCache's second
    /// pass); without it the model draws the next seed from <see cref="DropoutSeed"/> and a call counter.
    /// The caller's CPU random stream is left as it was (<see cref="DropoutReplay.Seeding"/>).
    /// <paramref name="hasPadding"/>: whether any mask entry is 0, when the caller knows it from the host batch;
    /// null reads it from the mask (a device-to-host sync).
    /// </summary>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask, long? dropoutSeed = null, bool? hasPadding = null)
    {
        using var scope = NewDisposeScope();
        long? seed = training && _hasDropout ? dropoutSeed ?? DropoutReplay.Mix(DropoutSeed, _forwardCount++) : null;
        var keyMask = KeyPaddingMask(attentionMask, hasPadding);
        using var seeding = seed is null ? null : DropoutReplay.Seeding(inputIds.device);
        if (seed is long s) DropoutReplay.Seed(DropoutReplay.Mix(s, 0), inputIds.device);
        var hidden = embeddings.forward(inputIds);
        var last = encoder.Forward(hidden, keyMask, seed);
        return last.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The attention mask as SDPA's boolean key mask [B, 1, 1, L], or null when no text of the batch
    /// is padded: SDPA's fused kernels run unmasked attention 1.6x faster, and length-grouped batches
    /// are often unpadded. Unless the caller says whether there is padding, finding out costs a
    /// device-to-host read, which stalls the host until the device has caught up.
    /// </summary>
    static Tensor? KeyPaddingMask(Tensor attentionMask, bool? hasPadding)
    {
        if (hasPadding == false) return null;
        var keep = attentionMask.to(ScalarType.Bool);
        if (hasPadding is null && keep.all().item<bool>()) return null;
        return keep.view(keep.shape[0], 1, 1, keep.shape[1]); // [B, 1, 1, L]
    }

    /// <summary>HF's initialization: normal(0, initializer_range) weights, zero biases, unit LayerNorms, zero padding rows.</summary>
    void InitializeWeights()
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in named_parameters())
        {
            if (name.EndsWith("LayerNorm.weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else nn.init.normal_(p, 0.0, Config.InitializerRange);
        }
        embeddings.ZeroPaddingRows();
    }
}
