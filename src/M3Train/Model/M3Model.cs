using M3Train.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// BGE-M3: an <see cref="XlmRobertaModel"/> with the dense, lexical and multi-vector heads, and
/// optionally the masked-LM head of the checkpoint it came from (RetroMAE pretraining uses it).
/// Parameter names follow FlagEmbedding's training model: <c>model.*</c> (the encoder, HF keys),
/// <c>colbert_linear.{weight,bias}</c>, <c>sparse_linear.{weight,bias}</c>, <c>lm_head.*</c>.
/// Shapes: B batch, L tokens, D hidden, D' multi-vector size.
/// </summary>
public sealed class M3Model : nn.Module<Tensor, Tensor, M3Representations>
{
    readonly XlmRobertaModel model;
    readonly ColbertHead colbert_linear;
    readonly SparseHead sparse_linear;
    readonly XlmRobertaLMHead? lm_head;

    /// <param name="config">Encoder shape.</param>
    /// <param name="colbertDim">D', the multi-vector size; null for D (FlagEmbedding's colbert_dim = -1).</param>
    /// <param name="withLmHead">Also hold a masked-LM head (tied to the word embeddings).</param>
    public M3Model(XlmRobertaConfig config, int? colbertDim = null, bool withLmHead = false) : base(nameof(M3Model))
    {
        model = new XlmRobertaModel(config);
        colbert_linear = new ColbertHead(config.HiddenSize, colbertDim ?? config.HiddenSize, model.Compute);
        sparse_linear = new SparseHead(config.HiddenSize, config.UnusedLexicalIds, model.Compute);
        lm_head = withLmHead ? new XlmRobertaLMHead(config, model.Compute) : null;
        RegisterComponents();
    }

    public XlmRobertaConfig Config => model.Config;

    /// <summary>The XLM-RoBERTa model under the heads (checkpoint keys <c>model.*</c>).</summary>
    public XlmRobertaModel Backbone => model;

    public ColbertHead ColbertHead => colbert_linear;

    public SparseHead SparseHead => sparse_linear;

    /// <summary>The masked-LM head, when the model was built or loaded with one.</summary>
    public XlmRobertaLMHead? LmHead => lm_head;

    /// <summary>Matmul precision of encoder and heads (weights stay fp32).</summary>
    public ComputePrecision Precision
    {
        get => model.Compute.Precision;
        set => model.Compute.Precision = value;
    }

    /// <summary>Recompute encoder layers in backward (activation checkpointing); default off.</summary>
    public bool GradientCheckpointing
    {
        get => model.Compute.GradientCheckpointing;
        set => model.Compute.GradientCheckpointing = value;
    }

    /// <summary>Whether dense and multi-vector outputs are L2-normalized; default true (M3's setting).</summary>
    public bool NormalizeEmbeddings
    {
        get => colbert_linear.Normalize;
        set => colbert_linear.Normalize = value;
    }

    public override M3Representations forward(Tensor inputIds, Tensor attentionMask) => Encode(inputIds, attentionMask);

    /// <summary>
    /// Encodes a batch: input_ids [B, L] int64, attention_mask [B, L] → the representations <paramref name="parts"/>
    /// names (the dense one always: it costs nothing beside the encoder; a head left out is not run).
    /// In training mode <paramref name="dropoutSeed"/> fixes the dropout masks; pass <paramref name="hasPadding"/>
    /// when the host batch tells it, to spare a device sync (see <see cref="XlmRobertaModel.Forward"/>).
    /// </summary>
    public M3Representations Encode(Tensor inputIds, Tensor attentionMask, long? dropoutSeed = null, bool? hasPadding = null,
        EncodingParts parts = EncodingParts.All)
    {
        using var scope = NewDisposeScope();
        var hidden = model.Forward(inputIds, attentionMask, dropoutSeed, hasPadding); // [B, L, D]
        bool lexical = parts.HasFlag(EncodingParts.Lexical), colbert = parts.HasFlag(EncodingParts.Colbert);
        var reps = new M3Representations(
            Dense: DenseHead.Forward(hidden, NormalizeEmbeddings),
            TokenWeights: lexical ? sparse_linear.forward(hidden, inputIds) : null,
            InputIds: lexical ? inputIds.alias() : null,
            ColbertVectors: colbert ? colbert_linear.forward(hidden, attentionMask) : null,
            ColbertMask: colbert ? attentionMask[.., 1..] : null);
        return reps.MoveToOuterDisposeScope();
    }

    /// <summary>Masked-LM logits [B, L, V] of hidden states [B, L, D]; needs <see cref="LmHead"/>.</summary>
    public Tensor MaskedLmLogits(Tensor lastHidden) =>
        (lm_head ?? throw new InvalidOperationException("This model has no masked-LM head (build or load it with one)."))
            .forward(lastHidden, model.WordEmbeddings);
}
