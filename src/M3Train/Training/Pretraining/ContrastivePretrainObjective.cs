using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using M3Train.Training.Losses;
using static TorchSharp.torch;

namespace M3Train.Training.Pretraining;

/// <summary>
/// Contrastive pretraining on unsupervised pairs (M3-SPEC section 8) as a <see cref="Trainer"/> objective: the
/// dense head only (CLS state, L2-normalized when <c>model.normalize_embeddings</c>), InfoNCE at temperature τ
/// with in-batch negatives and, with several replicas, cross-device negatives: every replica's queries are scored
/// against the passages of all replicas (<see cref="CrossDeviceDenseScores"/>, targets (global row)·G).
/// Passages equal to a row's positive are excluded as negatives when <c>loss.mask_duplicate_negatives</c>.
/// The spec's batches (hundreds of pairs per replica and bin) fit only through <see cref="GradCache"/>: the dense
/// embeddings of all sub-batches are computed without a graph, the loss's gradient with respect to them is taken,
/// and each sub-batch is re-encoded with a graph to push its slice into the encoder, so memory is bounded by one
/// sub-batch and the gradient equals a single pass over the whole batch. Only [N, D] embeddings are cached, not
/// the sparse and multi-vector outputs fine-tuning needs.
/// Shapes: W replicas, B pairs each, G = 1 passage per query, D hidden; scores [W·B, W·B·G].
/// </summary>
public sealed class ContrastivePretrainObjective(ReplicaSet<M3Model> models, LossConfig loss, int subBatchSize, long seed, bool normalize)
    : ITrainingObjective
{
    public IReadOnlyDictionary<string, Tensor> Backward(IReadOnlyList<TrainBatch> batches, long microStep, double scale)
    {
        if (batches.Count != models.Replicas.Count)
            throw new ArgumentException($"one batch per replica: {batches.Count} batches for {models.Replicas.Count} replicas");
        if (batches.FirstOrDefault(b => b.Passages is null) is { } texts)
            throw new M3TrainException($"{texts.DatasetName}: contrastive pretraining trains on {{\"query\", \"pos\"}} pairs, this dataset holds text rows (use pretrain.objective: retromae for texts).");

        var chunks = new List<EncodeChunk>();
        for (int r = 0; r < batches.Count; r++)
        {
            AddChunks(chunks, $"q{r}", M3StepRunner.Pieces(batches[r].Queries, batches[r].QuerySubBatches, subBatchSize), microStep, r, 0);
            AddChunks(chunks, $"p{r}", M3StepRunner.Pieces(batches[r].Passages!, batches[r].PassageSubBatches, subBatchSize), microStep, r, 1);
        }
        var parts = GradCache.Step(chunks, reps =>
        {
            var value = Loss(Enumerable.Range(0, batches.Count).Select(r => reps[$"q{r}"][0]).ToList(),
                             Enumerable.Range(0, batches.Count).Select(r => reps[$"p{r}"][0]).ToList(), batches);
            return new Dictionary<string, Tensor> { ["loss"] = value, ["objective"] = value * scale };
        }, lossKey: "objective");
        return new Dictionary<string, Tensor> { ["loss"] = parts["loss"] };
    }

    /// <summary>
    /// InfoNCE of the gathered dense embeddings: queries[r] [B, D] and passages[r] [B·G, D] of replica r (any
    /// device) → scalar on the first replica's device. Public so a single-pass reference can be checked against it.
    /// </summary>
    public Tensor Loss(IReadOnlyList<Tensor> queries, IReadOnlyList<Tensor> passages, IReadOnlyList<TrainBatch> batches)
    {
        var device = models.Devices[0];
        var scores = CrossDeviceDenseScores.FromGathered(
            CrossDeviceGather.Gather(queries, device), CrossDeviceGather.Gather(passages, device), rank: 0, worldSize: queries.Count);
        Tensor? exclude = null;
        if (loss.MaskDuplicateNegatives && batches.All(b => b.PassageHashes is not null && b.PositiveHashes is not null))
            exclude = FalseNegativeMask.Build(batches.SelectMany(b => b.PassageHashes!).ToArray(), scores.GroupSize, inBatchNegatives: true,
                batches.SelectMany(b => b.PositiveHashes!).Select(p => (IReadOnlyCollection<ulong>)p).ToArray(), device).Mask; // [W·B, W·B·G]
        return InfoNceLoss.Compute(scores.Global / loss.Temperature, scores.Targets, exclude);
    }

    /// <summary>Dense embeddings [N, D] of token ids and mask [N, L] on replica <paramref name="replica"/>, dropout fixed by <paramref name="dropoutSeed"/>.</summary>
    public Tensor Encode(int replica, Tensor ids, Tensor mask, long dropoutSeed)
    {
        using var scope = NewDisposeScope();
        var hidden = models.Replicas[replica].Encoder.Forward(ids, mask, dropoutSeed);             // [N, L, D]
        return DenseHead.Forward(hidden, normalize).MoveToOuterDisposeScope();                    // [N, D]
    }

    /// <summary>Dropout seed of sub-batch <paramref name="index"/> of queries (kind 0) or passages (kind 1) on a replica, the same in both passes.</summary>
    public long ChunkSeed(long microStep, int replica, int kind, int index) =>
        DropoutReplay.Mix(DropoutReplay.Mix(DropoutReplay.Mix(seed, microStep), replica * 2 + kind), index);

    void AddChunks(List<EncodeChunk> chunks, string group, IReadOnlyList<EncodedBatch> pieces, long microStep, int replica, int kind)
    {
        var device = models.Devices[replica];
        for (int i = 0; i < pieces.Count; i++)
        {
            var piece = pieces[i];
            long chunkSeed = ChunkSeed(microStep, replica, kind, i);
            chunks.Add(new EncodeChunk(group, () =>
            {
                var (ids, mask) = piece.ToTensors(device);
                using (ids)
                using (mask)
                    return [Encode(replica, ids, mask, chunkSeed)];
            }, chunkSeed));
        }
    }
}
