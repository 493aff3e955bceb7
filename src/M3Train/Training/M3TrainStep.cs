using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Text;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// One optimizer step of M3 fine-tuning, the code path that both the trainer and <c>m3train bench</c> run:
/// host batches to the device, <see cref="M3Model.Encode"/> of queries and passages (whole, or in GradCache
/// sub-batches when <see cref="TrainConfig.SubBatchSize"/> is set), <see cref="M3BatchLoss"/>, backward,
/// gradient reduction over replicas, on-device clipping, the AdamW update. Shapes per replica: B queries,
/// G passages each, Lq/Lp tokens.
/// </summary>
/// <remarks>
/// The step never reads a tensor back to the host: the loss parts and the gradient norm come back as device
/// tensors, and whether a batch is padded is taken from the host batch. Reading a returned value is the
/// caller's sync, to be done when logging. Call <c>train()</c> on the replicas before stepping.
/// </remarks>
public sealed class M3TrainStep
{
    readonly ReplicaSet<M3Model> _replicas;
    readonly M3BatchLoss _loss;
    readonly AdamW _optimizer;
    readonly TrainConfig _train;
    readonly List<Parameter> _trainable;

    /// <param name="replicas">One model per device; replica 0's optimizer steps (see <see cref="ReplicaSet{TModule}"/>).</param>
    /// <param name="loss">The run's loss.</param>
    /// <param name="optimizer">AdamW over replica 0's parameters (<see cref="OptimizerFactory.Create"/>).</param>
    /// <param name="train">Read: <see cref="TrainConfig.MaxGradNorm"/>, <see cref="TrainConfig.SubBatchSize"/>.</param>
    public M3TrainStep(ReplicaSet<M3Model> replicas, M3BatchLoss loss, AdamW optimizer, TrainConfig train)
    {
        _replicas = replicas;
        _loss = loss;
        _optimizer = optimizer;
        _train = train;
        _trainable = replicas.Master.parameters().Where(p => p.requires_grad).ToList();
    }

    /// <summary>A single replica on <paramref name="device"/> (the model must already be there).</summary>
    public M3TrainStep(M3Model model, Device device, M3BatchLoss loss, AdamW optimizer, TrainConfig train)
        : this(new ReplicaSet<M3Model>([model], [device]), loss, optimizer, train)
    {
    }

    /// <summary>Loss evaluations so far (0-based counter the loss uses to start self-distillation); save and restore it on resume.</summary>
    public long MicroStep { get; set; }

    public int WorldSize => _replicas.Replicas.Count;

    /// <summary>
    /// One optimizer step over <paramref name="microBatches"/> (each holds one batch per replica): gradients of
    /// every micro-batch's loss, divided by their count, are summed, then <see cref="Update"/> applies them.
    /// Each reported loss part is its mean over the micro-batches it occurred in (self-distillation starts
    /// after the first micro-step).
    /// <paramref name="phaseEnd"/> is called at the end of each phase (for timing: it may synchronize the device).
    /// </summary>
    public M3StepResult Run(IReadOnlyList<IReadOnlyList<TrainBatch>> microBatches, double lr, Action<StepPhase>? phaseEnd = null)
    {
        if (microBatches.Count == 0) throw new ArgumentException("a step needs at least one micro-batch");
        using var scope = NewDisposeScope();
        var sums = new Dictionary<string, Tensor>();
        var counts = new Dictionary<string, int>();
        foreach (var batches in microBatches)
        {
            foreach (var (name, value) in Accumulate(batches, 1.0 / microBatches.Count, phaseEnd))
            {
                sums[name] = sums.TryGetValue(name, out var sum) ? sum + value : value;
                counts[name] = counts.GetValueOrDefault(name) + 1;
            }
        }
        var norm = Update(lr, phaseEnd);
        var means = sums.ToDictionary(kv => kv.Key, kv => counts[kv.Key] == 1 ? kv.Value : kv.Value / counts[kv.Key]);
        foreach (var t in means.Values) t.MoveToOuterDisposeScope();
        norm.MoveToOuterDisposeScope();
        return new M3StepResult(means, norm);
    }

    /// <summary>One optimizer step over one batch of a single replica.</summary>
    public M3StepResult Run(TrainBatch batch, double lr, Action<StepPhase>? phaseEnd = null) => Run([[batch]], lr, phaseEnd);

    /// <summary>
    /// Forward and backward of one micro-batch, <paramref name="batches"/>[r] on replica r; the gradients of
    /// loss · <paramref name="lossScale"/> are added to the parameters' .grad. Returns the loss parts, detached.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> Accumulate(IReadOnlyList<TrainBatch> batches, double lossScale = 1.0, Action<StepPhase>? phaseEnd = null)
    {
        if (batches.Count != WorldSize) throw new ArgumentException($"{batches.Count} batches for {WorldSize} replicas");
        if (batches.Any(b => b.Passages is null))
            throw new M3TrainException("a fine-tuning step needs query-passage groups; text rows are for pretraining");
        using var scope = NewDisposeScope();
        var inputs = batches.Select((b, r) => new ReplicaInput(b, _replicas.Devices[r], _train.SubBatchSize)).ToList();
        phaseEnd?.Invoke(StepPhase.Input);

        IReadOnlyDictionary<string, Tensor> parts = _train.SubBatchSize is not null
            ? AccumulateInSubBatches(inputs, batches, lossScale, phaseEnd)
            : AccumulateWhole(inputs, batches, lossScale, phaseEnd);
        phaseEnd?.Invoke(StepPhase.Backward);
        MicroStep++;
        foreach (var t in parts.Values) t.MoveToOuterDisposeScope();
        return parts;
    }

    /// <summary>
    /// Sums the replicas' gradients into replica 0, clips them to <see cref="TrainConfig.MaxGradNorm"/>, sets the
    /// learning rate, steps AdamW, clears gradients and copies the new weights to the other replicas. Returns the
    /// gradient norm before clipping (a device tensor).
    /// </summary>
    public Tensor Update(double lr, Action<StepPhase>? phaseEnd = null)
    {
        _replicas.ReduceGradients();
        var norm = GradientClipper.ClipByGlobalNorm(_trainable, _train.MaxGradNorm);
        OptimizerFactory.SetLr(_optimizer, lr);
        _optimizer.step();
        _optimizer.zero_grad();
        _replicas.BroadcastWeights();
        phaseEnd?.Invoke(StepPhase.Optimizer);
        return norm;
    }

    IReadOnlyDictionary<string, Tensor> AccumulateWhole(List<ReplicaInput> inputs, IReadOnlyList<TrainBatch> batches,
        double lossScale, Action<StepPhase>? phaseEnd)
    {
        var queries = new List<M3Representations>(WorldSize);
        var passages = new List<M3Representations>(WorldSize);
        for (int r = 0; r < WorldSize; r++)
        {
            var model = _replicas.Replicas[r];
            var input = inputs[r];
            queries.Add(model.Encode(input.QueryIds, input.QueryMask, hasPadding: batches[r].Queries.HasPadding()));
            passages.Add(model.Encode(input.PassageIds, input.PassageMask, hasPadding: batches[r].Passages!.HasPadding()));
        }
        var parts = _loss.Compute(queries, passages, batches, MicroStep);
        phaseEnd?.Invoke(StepPhase.Forward);
        var total = lossScale == 1.0 ? parts["loss"] : parts["loss"] * lossScale;
        total.backward();
        return parts.ToDictionary(kv => kv.Key, kv => kv.Value.detach());
    }

    /// <summary>
    /// GradCache: every sub-batch of queries and passages is encoded once without a graph, the loss sees the whole
    /// batch, and each sub-batch is encoded again with a graph to carry its slice of the loss gradient into the
    /// weights. Sub-batches padded on their own by the loader (<see cref="TrainBatch.QuerySubBatches"/>) are used as
    /// they are; otherwise the batch's rows are cut in order.
    /// </summary>
    IReadOnlyDictionary<string, Tensor> AccumulateInSubBatches(List<ReplicaInput> inputs, IReadOnlyList<TrainBatch> batches,
        double lossScale, Action<StepPhase>? phaseEnd)
    {
        const string Backward = "backward";
        var chunks = new List<EncodeChunk>();
        for (int r = 0; r < WorldSize; r++)
        {
            var model = _replicas.Replicas[r];
            long stepSeed = DropoutReplay.Mix(model.Encoder.DropoutSeed, MicroStep * WorldSize + r);
            foreach (var (group, piece) in inputs[r].SubBatches)
            {
                long seed = DropoutReplay.Mix(stepSeed, chunks.Count);
                chunks.Add(new EncodeChunk($"{group}{r}",
                    () => M3RepresentationList.ToList(model.Encode(piece.Ids, piece.Mask, seed, piece.HasPadding)), seed));
            }
        }
        var parts = GradCache.Step(chunks, reps =>
        {
            var queries = Enumerable.Range(0, WorldSize).Select(r => M3RepresentationList.FromList(reps[$"q{r}"])).ToList();
            var passages = Enumerable.Range(0, WorldSize).Select(r => M3RepresentationList.FromList(reps[$"p{r}"])).ToList();
            var loss = new Dictionary<string, Tensor>(_loss.Compute(queries, passages, batches, MicroStep));
            loss[Backward] = lossScale == 1.0 ? loss["loss"] : loss["loss"] * lossScale;
            return loss;
        }, Backward, M3RepresentationList.ConcatPadded, () => phaseEnd?.Invoke(StepPhase.Forward));
        return parts.Where(kv => kv.Key != Backward).ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>One replica's batch on its device, and its sub-batches when the step encodes in sub-batches.</summary>
    sealed class ReplicaInput
    {
        public ReplicaInput(TrainBatch batch, Device device, int? subBatch)
        {
            (QueryIds, QueryMask) = batch.Queries.ToTensors(device);        // [B, Lq]
            (PassageIds, PassageMask) = batch.Passages!.ToTensors(device);  // [B·G, Lp]
            if (subBatch is int size)
            {
                SubBatches =
                [
                    .. Cut(batch.QuerySubBatches, batch.Queries, QueryIds, QueryMask, size, device).Select(p => ("q", p)),
                    .. Cut(batch.PassageSubBatches, batch.Passages!, PassageIds, PassageMask, size, device).Select(p => ("p", p)),
                ];
            }
        }

        public Tensor QueryIds { get; }
        public Tensor QueryMask { get; }
        public Tensor PassageIds { get; }
        public Tensor PassageMask { get; }

        /// <summary>Query sub-batches ("q"), then passage sub-batches ("p"), in row order; empty without sub-batching.</summary>
        public IReadOnlyList<(string Group, Piece Piece)> SubBatches { get; } = [];

        static IEnumerable<Piece> Cut(IReadOnlyList<EncodedBatch>? padded, EncodedBatch whole, Tensor ids, Tensor mask, int size, Device device)
        {
            if (padded is not null)
            {
                foreach (var sub in padded)
                {
                    var (subIds, subMask) = sub.ToTensors(device);                // [n, L_sub]
                    yield return new Piece(subIds, subMask, sub.HasPadding());
                }
                yield break;
            }
            for (int start = 0; start < whole.BatchSize; start += size)
            {
                int n = Math.Min(size, whole.BatchSize - start);
                yield return new Piece(ids.narrow(0, start, n), mask.narrow(0, start, n), whole.HasPadding(start, n)); // [n, L]
            }
        }
    }

    sealed record Piece(Tensor Ids, Tensor Mask, bool HasPadding);
}
