using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// RetroMAE pretraining (Xiao et al. 2022, "RetroMAE: Pre-Training Retrieval-oriented Language Models Via
/// Masked Auto-Encoder") as a <see cref="Trainer"/> objective, on <c>{"text"}</c> rows.
/// For each text, from one seeded generator per (step, rank, sub-batch):
/// <list type="number">
/// <item>the encoder reads the text masked by <see cref="MlmMasking"/> (30%, 80/10/10) and predicts the masked
/// tokens through the masked-LM head: <c>loss_mlm</c>, mean over the micro-batch's masked tokens;</item>
/// <item>its CLS state is the sentence embedding; <see cref="RetroMaeDecoder"/> (one layer, reading through the
/// encoder's embedding module) reconstructs every token but the first and last from it and from a random half of the other tokens per row
/// (<see cref="EnhancedDecodingMask"/>), through the same tied LM head: <c>loss_decoder</c>, mean over those tokens;</item>
/// <item><c>loss = loss_mlm + loss_decoder</c>.</item>
/// </list>
/// Both means run over the whole global micro-batch (all ranks and sub-batches: each rank divides by the mean count per
/// rank, and the trainer averages the ranks' gradients), so sub-batching (<c>train.sub_batch_size</c>) and the number of
/// ranks change memory, not gradients. The LM logits are computed only at predicted
/// positions ([N, V], N predicted tokens), <c>pretrain.lm_loss_chunk</c> tokens at a time (<see cref="ChunkedTokenLoss"/>),
/// which again changes memory, not gradients. The decoder is trained beside the model (<see cref="Modules"/>: its
/// gradients averaged over the ranks with the encoder's, saved as <see cref="RetroMaeDecoder.FileName"/> in every
/// checkpoint and in the final folder), and picked up from <c>model.path</c> when there, to continue pretraining.
/// </summary>
public sealed class RetroMaeObjective : ITrainingObjective
{
    const string ParameterPrefix = "retromae_decoder.";

    readonly M3Model _model;
    readonly DataParallelGroup _group;
    readonly PretrainConfig _config;
    readonly MlmMasking _masking;
    readonly SubBatching _subBatching;
    readonly long _seed;

    /// <param name="model">This rank's model, with its masked-LM head.</param>
    /// <param name="group">This rank in the data-parallel world (the token counts of the global batch).</param>
    /// <param name="config">Masking and decoder settings.</param>
    /// <param name="tokenizer">The model's tokenizer (its &lt;mask&gt; id).</param>
    /// <param name="modelPath">The checkpoint the run starts from; a <see cref="RetroMaeDecoder.FileName"/> there is loaded.</param>
    /// <param name="subBatching">Texts per forward/backward, for every length bin or per bin (null: the whole batch at once).</param>
    /// <param name="seed">The run's seed: decoder initialization, masks and dropout derive from it.</param>
    public RetroMaeObjective(M3Model model, DataParallelGroup group, PretrainConfig config, XlmrTokenizer tokenizer, string modelPath, SubBatching subBatching, long seed)
    {
        var encoderConfig = model.Config;
        if (model.LmHead is null)
            throw new ArgumentException("RetroMAE needs the masked-LM head: load the model with WithLmHead");
        if (tokenizer.MaskId >= encoderConfig.VocabSize)
            throw new M3TrainException($"{modelPath}: the tokenizer's <mask> id {tokenizer.MaskId} is outside the model's vocabulary ({encoderConfig.VocabSize}).");
        _model = model;
        _group = group;
        _config = config;
        _subBatching = subBatching;
        _seed = seed;
        _masking = new MlmMasking(config.EncoderMaskRatio, config.MaskTokenRatio, config.RandomTokenRatio, config.MaskSampling,
            MaskId: tokenizer.MaskId, RandomLow: XlmrTokenizer.UnkId + 1, RandomHigh: tokenizer.MaskId,
            NeverMasked: [.. encoderConfig.UnusedLexicalIds, tokenizer.MaskId]);

        // Every rank builds the decoder from the same seed and files (the trainer checks the weights agree); it reads
        // through this rank's encoder embeddings (on its device already).
        Decoder = new RetroMaeDecoder(encoderConfig, model.Backbone.Embeddings, seed);
        string saved = Path.Combine(modelPath, RetroMaeDecoder.FileName);
        if (File.Exists(saved))
        {
            Decoder.Load(saved);
            Log.Information("RetroMAE decoder continued from {File}", saved);
        }
        else
            Log.Information("RetroMAE decoder: a new layer over the encoder's embeddings ({Model} has no {File})", modelPath, RetroMaeDecoder.FileName);
        Decoder.to(group.Device);
        Decoder.Compute.Precision = model.Precision;
        Decoder.train();
        Modules = [new TrainedModule(ParameterPrefix, RetroMaeDecoder.FileName, Decoder, Decoder.Save, Decoder.Load)];
    }

    /// <summary>This rank's decoder; its parameters are the optimizer's beside the model's.</summary>
    public RetroMaeDecoder Decoder { get; }

    /// <summary>The decoder, trained beside the model.</summary>
    public IReadOnlyList<TrainedModule> Modules { get; }

    /// <summary>Both losses of one micro-batch; its metrics are <c>loss_mlm</c> and <c>loss_decoder</c>.</summary>
    public ObjectiveStep Step(TrainBatch batch, StepContext context)
    {
        long microStep = context.MicroStep;
        if (batch.Passages is not null)
            throw new ArgumentException($"{batch.DatasetName}: RetroMAE trains on text rows, this batch holds query/passage rows");

        // Pass 1: every piece's masks and targets, and the micro-batch's token counts: the means' denominators, as the
        // mean count per rank, so the mean over ranks of each rank's share is the global batch's mean.
        var pieces = Prepare(batch, microStep);
        var (mlmTokens, decoderTokens) = Denominators(pieces);
        using var mlmDenominator = mlmTokens;
        using var decoderDenominator = decoderTokens;

        // Pass 2: forward and backward piece by piece; gradients accumulate.
        Tensor mlm = zeros(1, device: _group.Device), decoder = zeros(1, device: _group.Device);
        for (int i = 0; i < pieces.Count; i++)
        {
            if (i == pieces.Count - 1) context.FinalBackward?.Invoke();
            using var piece = pieces[i];
            var (m, d) = Piece(piece, mlmTokens, decoderTokens, context.Scale);
            mlm = mlm + m;
            decoder = decoder + d;
        }
        var lossMlm = mlm.sum();
        var lossDecoder = decoder.sum();
        return new ObjectiveStep(lossMlm + lossDecoder,
            new Dictionary<string, Tensor> { ["loss_mlm"] = lossMlm, ["loss_decoder"] = lossDecoder },
            new Dictionary<string, double>());
    }

    /// <summary>
    /// The means over ranks of this rank's masked-LM and decoder token counts (0-d counts of its pieces), in one
    /// all-reduce; each at least 1, so an empty micro-batch gives loss 0.
    /// </summary>
    (Tensor Mlm, Tensor Decoder) Denominators(List<RetroMaePiece> pieces)
    {
        Tensor Total(Func<RetroMaePiece, Tensor> count) => pieces.Select(count).Aggregate((a, b) => a + b);
        using var local = stack([Total(x => x.MlmTokens), Total(x => x.DecoderTokens)]).to(ScalarType.Float32);   // [2]
        using var mean = _group.Mean(local).clamp_min(1);
        return (mean[0], mean[1]);
    }

    List<RetroMaePiece> Prepare(TrainBatch batch, long microStep)
    {
        var device = _group.Device;
        var encoded = batch.QueryPieces(_subBatching.Of(batch.Bin) ?? batch.BatchSize).Pieces;
        var result = new List<RetroMaePiece>(encoded.Count);
        for (int i = 0; i < encoded.Count; i++)
        {
            long pieceSeed = DropoutReplay.Mix(DropoutReplay.Mix(DropoutReplay.Mix(_seed, microStep), _group.Rank), i);
            var generator = new Generator((ulong)pieceSeed, device);
            var (ids, mask) = encoded[i].ToTensors(device);
            var (maskedIds, mlmLabels) = _masking.Apply(ids, mask, generator);
            var decoderLabels = DecoderLabels(ids, mask);
            result.Add(new RetroMaePiece(ids, mask, maskedIds, mlmLabels, decoderLabels, generator, pieceSeed,
                mlmLabels.ne(MlmMasking.IgnoreIndex).sum(), decoderLabels.ne(MlmMasking.IgnoreIndex).sum()));
        }
        return result;
    }

    /// <summary>The decoder's targets: every token of the text but the first (&lt;s&gt;) and the last (&lt;/s&gt;). [B, L] int64.</summary>
    static Tensor DecoderLabels(Tensor ids, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var position = arange(ids.shape[1], device: ids.device).unsqueeze(0);                    // [1, L]
        var last = mask.sum(1, keepdim: true) - 1;                                                 // [B, 1]
        var predicted = position.gt(0) & position.lt(last) & mask.to(ScalarType.Bool);             // [B, L]
        return ids.masked_fill(predicted.logical_not(), MlmMasking.IgnoreIndex).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One piece's forward and backward; returns its (detached) shares of the two means. The LM losses go a chunk
    /// of tokens at a time (<see cref="ChunkedTokenLoss"/>, <c>pretrain.lm_loss_chunk</c>), then one backward
    /// carries both row gradients through the decoder and the encoder.
    /// </summary>
    (Tensor Mlm, Tensor Decoder) Piece(RetroMaePiece p, Tensor mlmDenominator, Tensor decoderDenominator, double scale)
    {
        var model = _model;
        using var scope = NewDisposeScope();
        var hidden = model.Backbone.Forward(p.MaskedIds, p.Mask, p.Seed);                         // [B, L, D]
        var visible = EnhancedDecodingMask.Build(p.Mask, _config.DecoderMaskRatio, _config.MaskSampling, p.Generator); // [B, 1, L, L]
        Tensor decoded;
        using (DropoutReplay.Seeding(p.InputIds.device))
        {
            DropoutReplay.Seed(DropoutReplay.Mix(p.Seed, 1), p.InputIds.device);
            decoded = Decoder.forward(hidden[.., 0], p.InputIds, visible);                       // [B, L, D]
        }
        // Only the labelled positions: [N, D] rows, so the logits are [N, V] instead of [B, L, V] (selecting them
        // costs one device-to-host read of N).
        var mlmAt = p.MlmLabels.ne(MlmMasking.IgnoreIndex);                                        // [B, L]
        var decoderAt = p.DecoderLabels.ne(MlmMasking.IgnoreIndex);                                // [B, L]
        var mlmRows = hidden[mlmAt];                                                               // [Nm, D]
        var decoderRows = decoded[decoderAt];                                                      // [Nd, D]
        var (mlm, mlmGradient) = ChunkedTokenLoss.Run(model.MaskedLmLogits, mlmRows, p.MlmLabels[mlmAt],
            scale / mlmDenominator, _config.LmLossChunk);
        var (reconstruction, decoderGradient) = ChunkedTokenLoss.Run(model.MaskedLmLogits, decoderRows, p.DecoderLabels[decoderAt],
            scale / decoderDenominator, _config.LmLossChunk);
        var outputs = new List<Tensor>();
        var gradients = new List<Tensor>();
        if (mlmGradient is not null) { outputs.Add(mlmRows); gradients.Add(mlmGradient); }
        if (decoderGradient is not null) { outputs.Add(decoderRows); gradients.Add(decoderGradient); }
        if (outputs.Count > 0) autograd.backward(outputs, gradients);
        return ((mlm / mlmDenominator).MoveToOuterDisposeScope(), (reconstruction / decoderDenominator).MoveToOuterDisposeScope());
    }
}
