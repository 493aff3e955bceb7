using M3Train.Data;
using M3Train.Text;

namespace M3Train.Training.Benchmarks;

/// <summary>
/// Training batches of random tokens without padding, as issue 10's reference measurements used: each text is
/// &lt;s&gt;, ids drawn uniformly from the non-special vocabulary, &lt;/s&gt;. No teacher scores, no text hashes.
/// </summary>
public static class RandomTokenBatch
{
    /// <summary>B queries of <paramref name="queryLength"/> tokens and B·G passages of <paramref name="passageLength"/> tokens.</summary>
    public static TrainBatch Create(int queries, int group, int queryLength, int passageLength, int vocabSize, Random random, int step = 0)
    {
        var q = Texts(queries, queryLength, vocabSize, random);
        var p = Texts(queries * group, passageLength, vocabSize, random);
        return new TrainBatch(Epoch: 0, Step: step, Dataset: 0, DatasetName: "random", Bin: 0, Rows: Enumerable.Range(0, queries).ToArray(),
            Queries: q, Passages: p, TeacherScores: null, GroupSize: group, NoInBatchNegatives: false,
            QuerySubBatches: null, PassageSubBatches: null);
    }

    static EncodedBatch Texts(int count, int length, int vocabSize, Random random)
    {
        if (length < 2) throw new M3TrainException($"texts need at least 2 tokens (<s> and </s>), got {length}.");
        const int firstOrdinaryId = XlmrTokenizer.UnkId + 1;
        var ids = new long[count * length];
        for (int row = 0; row < count; row++)
        {
            int start = row * length;
            ids[start] = XlmrTokenizer.BosId;
            for (int t = 1; t < length - 1; t++) ids[start + t] = random.Next(firstOrdinaryId, vocabSize);
            ids[start + length - 1] = XlmrTokenizer.EosId;
        }
        var mask = new long[ids.Length];
        Array.Fill(mask, 1L);
        return new EncodedBatch(ids, mask, count, length);
    }
}
