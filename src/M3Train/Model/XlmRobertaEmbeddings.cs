using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// Word + position + token-type embeddings, LayerNorm, dropout (HF <c>XLMRobertaEmbeddings</c>).
/// Shapes: B batch, L tokens, D hidden. input_ids [B, L] → [B, L, D] in fp32.
/// </summary>
public sealed class XlmRobertaEmbeddings : nn.Module<Tensor, Tensor>
{
    readonly Embedding word_embeddings;
    readonly Embedding position_embeddings;
    readonly Embedding token_type_embeddings;
    readonly LayerNorm LayerNorm; // HF's key spelling
    readonly Dropout dropout;
    readonly long _paddingIdx;

    public XlmRobertaEmbeddings(XlmRobertaConfig config) : base(nameof(XlmRobertaEmbeddings))
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PadTokenId);
        position_embeddings = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, padding_idx: config.PadTokenId);
        token_type_embeddings = nn.Embedding(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = nn.Dropout(config.HiddenDropoutProb);
        _paddingIdx = config.PadTokenId;
        RegisterComponents();
    }

    /// <summary>The word embedding matrix [V, D]; the masked-LM decoder is tied to it.</summary>
    public Parameter WordEmbeddings => word_embeddings.weight!;

    /// <summary>The position table [P, D], indexed by <see cref="PositionIds"/> (RetroMAE's decoder queries read it directly).</summary>
    public Parameter PositionEmbeddings => position_embeddings.weight!;

    public override Tensor forward(Tensor inputIds)
    {
        using var scope = NewDisposeScope();
        var positions = PositionIds(inputIds, _paddingIdx);
        var x = word_embeddings.forward(inputIds)
              + position_embeddings.forward(positions)
              + token_type_embeddings.weight![0]; // every token type id is 0
        x = dropout.forward(LayerNorm.forward(x)); // [B, L, D]
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>Zeroes the padding rows of the word and position tables, as HF's initialization does.</summary>
    internal void ZeroPaddingRows()
    {
        using var noGrad = no_grad();
        word_embeddings.weight![_paddingIdx].zero_();
        position_embeddings.weight![_paddingIdx].zero_();
    }

    /// <summary>
    /// XLM-R numbers real tokens padding_idx+1, padding_idx+2, ... and gives padding the position
    /// padding_idx itself (fairseq's convention), so a model with P positions takes P-2 tokens.
    /// </summary>
    public static Tensor PositionIds(Tensor inputIds, long paddingIdx)
    {
        using var scope = NewDisposeScope();
        var mask = inputIds.ne(paddingIdx).to(ScalarType.Int64);
        var positions = mask.cumsum(1) * mask + paddingIdx; // [B, L]
        return positions.MoveToOuterDisposeScope();
    }
}
