using M3Train.Data;
using Xunit;

namespace M3Train.Tests.Data;

public class TrainGroupSamplerTests
{
    static TrainRow Row(int positives, int negatives, bool scores = true) => new()
    {
        Query = "what is a river",
        Positives = Enumerable.Range(0, positives).Select(i => $"pos {i}").ToArray(),
        Negatives = Enumerable.Range(0, negatives).Select(i => $"neg {i}").ToArray(),
        PositiveScores = scores ? Enumerable.Range(0, positives).Select(i => 100f + i).ToArray() : null,
        NegativeScores = scores ? Enumerable.Range(0, negatives).Select(i => (float)i).ToArray() : null,
        Prompt = "Row prompt: ",
    };

    static float ScoreOf(string passage) =>
        passage.StartsWith("pos ", StringComparison.Ordinal) ? 100f + int.Parse(passage[4..]) : int.Parse(passage[4..]);

    [Fact]
    public void PositiveFirstDistinctNegativesAndAlignedScores()
    {
        var config = new DataConfig();
        for (int seed = 0; seed < 50; seed++)
        {
            var random = DataRandom.For(seed, DataRandomPurpose.Group, 0);
            var group = TrainGroupSampler.Sample(Row(3, 20), 8, withScores: true, config, ref random);
            Assert.StartsWith("pos ", group.Passages[0]);
            Assert.All(group.Passages[1..], p => Assert.StartsWith("neg ", p));
            Assert.Equal(7, group.Passages[1..].Distinct().Count());
            Assert.Equal(group.Passages.Select(ScoreOf), group.Scores!);
        }
    }

    [Fact]
    public void FewerNegativesThanNeededAreRepeatedEvenly()
    {
        var random = DataRandom.For(1, DataRandomPurpose.Group, 0);
        var group = TrainGroupSampler.Sample(Row(1, 3), 8, withScores: true, new DataConfig(), ref random);
        // 7 draws without replacement from the list repeated 3 times: each negative 2 or 3 times.
        var counts = group.Passages[1..].GroupBy(p => p).Select(g => g.Count()).ToList();
        Assert.Equal(3, counts.Count);
        Assert.All(counts, c => Assert.InRange(c, 2, 3));
        Assert.Equal(group.Passages.Select(ScoreOf), group.Scores!);
    }

    [Fact]
    public void InstructionIsPrependedOnlyWhenGiven()
    {
        var row = Row(1, 1);
        var noPrompt = row with { Prompt = null };
        Assert.Equal("what is a river", TrainGroupSampler.QueryText(noPrompt, new DataConfig()));
        Assert.Equal("Query: what is a river", TrainGroupSampler.QueryText(noPrompt, new DataConfig { QueryInstruction = "Query: " }));
        Assert.Equal("[Query: ] what is a river", TrainGroupSampler.QueryText(noPrompt, new DataConfig { QueryInstruction = "Query: ", QueryInstructionFormat = "[{0}] {1}" }));
        // A row's prompt is its instruction by default, in place of the configured one, as the reference reads it.
        Assert.Equal("Row prompt: what is a river", TrainGroupSampler.QueryText(row, new DataConfig()));
        Assert.Equal("Row prompt: what is a river", TrainGroupSampler.QueryText(row, new DataConfig { QueryInstruction = "Query: " }));
        Assert.Equal("Query: what is a river", TrainGroupSampler.QueryText(row, new DataConfig { QueryInstruction = "Query: ", UseRowPrompt = false }));
    }

    [Fact]
    public void PassagesTakeThePassageInstructionOrInSymmetricRowsTheQuerys()
    {
        var row = Row(1, 1, scores: false);
        TrainGroup Group(TrainRow r, DataConfig c)
        {
            var random = DataRandom.For(3, DataRandomPurpose.Group, 0);
            return TrainGroupSampler.Sample(r, 2, withScores: false, c, ref random);
        }
        Assert.Equal(["pos 0", "neg 0"], Group(row, new DataConfig()).Passages);
        Assert.Equal(["Passage: pos 0", "Passage: neg 0"], Group(row, new DataConfig { PassageInstruction = "Passage: " }).Passages);
        Assert.Equal(["<Passage: > pos 0", "<Passage: > neg 0"],
            Group(row, new DataConfig { PassageInstruction = "Passage: ", PassageInstructionFormat = "<{0}> {1}" }).Passages);
        foreach (string type in new[] { "symmetric_sts", "symmetric_clustering" })
        {
            // Both sides are the same kind of text: the passages take the query's instruction, not the passage one.
            var symmetric = row with { Type = type };
            var group = Group(symmetric, new DataConfig { PassageInstruction = "Passage: " });
            Assert.Equal("Row prompt: what is a river", group.Query);
            Assert.Equal(["Row prompt: pos 0", "Row prompt: neg 0"], group.Passages);
            Assert.Equal(["Query: pos 0", "Query: neg 0"], Group(symmetric with { Prompt = null }, new DataConfig { QueryInstruction = "Query: " }).Passages);
        }
        Assert.Equal(["Passage: pos 0", "Passage: neg 0"], Group(row with { Type = "symmetric_class" }, new DataConfig { PassageInstruction = "Passage: " }).Passages);
    }

    [Fact]
    public void ShuffleRatioCutsLongPositivesIntoThreeShuffledChunksAndLeavesNegatives()
    {
        string longText = string.Concat(Enumerable.Range(0, 40).Select(i => $"w{i:D2}🙂"));   // 160 code points, 40 surrogate pairs
        var row = new TrainRow { Query = "q", Positives = [longText], Negatives = [longText + " negative"] };
        var config = new DataConfig { ShuffleRatio = 1.0 };
        bool changed = false;
        for (int seed = 0; seed < 10; seed++)
        {
            var random = DataRandom.For(seed, DataRandomPurpose.Group, 0);
            var group = TrainGroupSampler.Sample(row, 2, withScores: false, config, ref random);
            Assert.Equal(longText + " negative", group.Passages[1]);   // as the reference, only the positive is shuffled
            string[] chunks = group.Passages[0].Split(' ');
            Assert.Equal(3, chunks.Length);
            Assert.Equal(longText.Order(), string.Concat(chunks).Order());
            Assert.All(chunks, c => Assert.False(char.IsLowSurrogate(c[0])));
            changed |= group.Passages[0].Replace(" ", "") != longText;
        }
        Assert.True(changed);
    }

    [Fact]
    public void SameKeysSameDrawsDifferentKeysDifferentDraws()
    {
        var a = DataRandom.For(42, DataRandomPurpose.Group, 3, 7);
        var b = DataRandom.For(42, DataRandomPurpose.Group, 3, 7);
        var c = DataRandom.For(42, DataRandomPurpose.Group, 7, 3);
        ulong[] da = [a.NextUInt64(), a.NextUInt64()], db = [b.NextUInt64(), b.NextUInt64()], dc = [c.NextUInt64(), c.NextUInt64()];
        Assert.Equal(da, db);
        Assert.NotEqual(da, dc);

        var r = DataRandom.For(1, DataRandomPurpose.RowOrder);
        var counts = new int[6];
        for (int i = 0; i < 60_000; i++) counts[r.NextInt(6)]++;
        Assert.All(counts, n => Assert.InRange(n, 9_400, 10_600));
    }
}
