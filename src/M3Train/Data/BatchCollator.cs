using M3Train.Text;

namespace M3Train.Data;

/// <summary>
/// Turns one replica's slice of a <see cref="PlannedBatch"/> into a <see cref="TrainBatch"/>: reads its rows,
/// samples each query's group (seeded by seed, epoch, dataset and row, so the same row gets the same group on
/// any world size), tokenizes in parallel and pads; with sub-batches, also cuts the texts into length-sorted sub-batches
/// (<see cref="SubBatches.ByLength"/>) of the batch's length bin's size.
/// </summary>
/// <param name="subBatchOfBin">Texts per sub-batch in a length bin, null for a bin encoded in one pass; null: no sub-batches.</param>
public sealed class BatchCollator(TrainData data, XlmrTokenizer tokenizer, long seed, Func<int, int?>? subBatchOfBin = null)
{
    public TrainBatch Collate(PlannedBatch planned, int rank, int epoch, int step)
    {
        var config = data.Config;
        var dataset = data.Datasets[planned.Dataset];
        int[] rows = planned.Slice(rank).ToArray();
        var read = dataset.ReadRows(rows);
        int? subBatch = config.PadPerSubBatch ? subBatchOfBin?.Invoke(planned.Bin) : null;

        if (dataset.Kind == RowKind.Text)
        {
            int[][] textIds = tokenizer.EncodeBatch(read.Select(r => r.Text!).ToArray(), config.PassageMaxLen);
            return new TrainBatch(epoch, step, planned.Dataset, dataset.Name, planned.Bin, rows,
                EncodedBatch.Pad(textIds, config.PadToMultipleOf), null, null, 0, planned.NoInBatchNegatives,
                SubBatches(textIds, subBatch, config.PadToMultipleOf), null);
        }

        int g = planned.GroupSize;
        var groups = new TrainGroup[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            var random = DataRandom.For(seed, DataRandomPurpose.Group, epoch, planned.Dataset, rows[i]);
            groups[i] = TrainGroupSampler.Sample(read[i], g, planned.HasTeacherScores, config, ref random);
        }
        int[][] queryIds = tokenizer.EncodeBatch(groups.Select(x => x.Query).ToArray(), config.QueryMaxLen);
        int[][] passageIds = tokenizer.EncodeBatch(groups.SelectMany(x => x.Passages).ToArray(), config.PassageMaxLen);
        float[]? scores = planned.HasTeacherScores ? groups.SelectMany(x => x.Scores!).ToArray() : null;
        return new TrainBatch(epoch, step, planned.Dataset, dataset.Name, planned.Bin, rows,
            EncodedBatch.Pad(queryIds, config.PadToMultipleOf), EncodedBatch.Pad(passageIds, config.PadToMultipleOf),
            scores, g, planned.NoInBatchNegatives,
            SubBatches(queryIds, subBatch, config.PadToMultipleOf), SubBatches(passageIds, subBatch, config.PadToMultipleOf),
            groups.SelectMany(x => x.Passages).Select(TextHash.Of).ToArray(),
            read.Select(r => r.Positives.Select(TextHash.Of).ToArray()).ToArray());
    }

    static SubBatches? SubBatches(int[][] ids, int? size, int padToMultipleOf) =>
        size is int s ? Data.SubBatches.ByLength(ids, s, padToMultipleOf) : null;
}
