using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using M3Train.Text;
using Serilog;

namespace M3Train.Data;

/// <summary>
/// Replica <c>rank</c>'s batches in plan order, epoch after epoch, prepared by a background producer into a
/// bounded queue (<see cref="DataConfig.PrefetchBatches"/>) so reading and tokenizing overlap compute.
/// <see cref="Position"/> is the place of the next batch <see cref="Next"/> returns; a loader created from a
/// saved position yields exactly the batches an uninterrupted run would have.
/// </summary>
public sealed class TrainDataLoader : IDisposable
{
    readonly TrainData _data;
    readonly long _seed;
    readonly int _worldSize, _rank;
    readonly BatchCollator _collator;
    readonly BlockingCollection<TrainBatch> _queue;
    readonly CancellationTokenSource _stop = new();
    readonly Task _producer;
    ExceptionDispatchInfo? _failure;

    /// <param name="data">The run's data.</param>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="seed">The run's seed (<c>train.seed</c>).</param>
    /// <param name="worldSize">Data-parallel replicas.</param>
    /// <param name="rank">This replica, 0 ≤ rank &lt; worldSize.</param>
    /// <param name="subBatchOfBin">The run's sub-batch size in each length bin (null for a bin without), for length-sorted
    /// sub-batches padded on their own; null: none.</param>
    /// <param name="resumeFrom">A saved <see cref="Position"/>; null starts at epoch 0, step 0.</param>
    public TrainDataLoader(TrainData data, XlmrTokenizer tokenizer, long seed, int worldSize = 1, int rank = 0,
        Func<int, int?>? subBatchOfBin = null, LoaderState? resumeFrom = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(worldSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(rank, worldSize);
        _data = data;
        _seed = seed;
        _worldSize = worldSize;
        _rank = rank;
        _collator = new BatchCollator(data, tokenizer, seed, subBatchOfBin);
        var first = BatchPlan.Create(data, seed, resumeFrom?.Epoch ?? 0, worldSize);
        StepsPerEpoch = first.Count;
        if (StepsPerEpoch == 0)
            throw new M3TrainException($"the data makes no complete global batch ({worldSize} replicas); lower data.batch_sizes or add data");
        if (rank == 0)
            Log.Information("Batch plan: {Steps} steps per epoch, {Dropped} rows per epoch left out of incomplete global batches, {Order}", StepsPerEpoch, first.DroppedRows,
                first.Permuted ? "rows and batches permuted from the seed" : "rows and batches shuffled in memory");
        if (resumeFrom is not null)
        {
            if (resumeFrom.Seed != seed || resumeFrom.PlanSignature != first.Signature)
                throw new M3TrainException("data loader state does not match this run's data, seed or batch sizes; resume with the same data and data settings");
            if (resumeFrom.Step < 0 || resumeFrom.Step > StepsPerEpoch)
                throw new M3TrainException($"data loader state: step {resumeFrom.Step} is outside the plan's {StepsPerEpoch} steps");
        }
        Position = Normalize(resumeFrom ?? new LoaderState(0, 0, seed, first.Signature));
        _queue = new BlockingCollection<TrainBatch>(data.Config.PrefetchBatches);
        var start = Position;
        _producer = Task.Factory.StartNew(() => Produce(start, first), TaskCreationOptions.LongRunning);
    }

    /// <summary>Batches in one epoch (the same every epoch: the plan's size depends only on row counts).</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Where the next batch comes from; save it with a checkpoint to resume there.</summary>
    public LoaderState Position { get; private set; }

    /// <summary>The next batch (blocking until the producer has it); epochs follow each other without end.</summary>
    public TrainBatch Next()
    {
        TrainBatch batch;
        try
        {
            batch = _queue.Take(_stop.Token);
        }
        catch (InvalidOperationException) when (_failure is not null)
        {
            _failure.Throw();
            throw;
        }
        Position = Normalize(Position with { Epoch = batch.Epoch, Step = batch.Step + 1 });
        return batch;
    }

    LoaderState Normalize(LoaderState state) =>
        state.Step >= StepsPerEpoch ? state with { Epoch = state.Epoch + 1, Step = 0 } : state;

    void Produce(LoaderState start, BatchPlan firstPlan)
    {
        try
        {
            var plan = firstPlan.Epoch == start.Epoch ? firstPlan : BatchPlan.Create(_data, _seed, start.Epoch, _worldSize);
            int step = start.Step;
            while (!_stop.IsCancellationRequested)
            {
                var batch = _collator.Collate(plan.Batches[step], _rank, plan.Epoch, step);
                _queue.Add(batch, _stop.Token);
                if (++step == plan.Count)
                {
                    plan = BatchPlan.Create(_data, _seed, plan.Epoch + 1, _worldSize);
                    step = 0;
                }
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _failure = ExceptionDispatchInfo.Capture(e);
        }
        finally
        {
            _queue.CompleteAdding();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _producer.Wait();
        _queue.Dispose();
        _stop.Dispose();
    }
}
