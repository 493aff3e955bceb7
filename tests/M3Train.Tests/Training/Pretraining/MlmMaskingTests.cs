using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Pretraining;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

public sealed class MlmMaskingTests
{
    const long MaskId = 1501;
    const int B = 64, L = 128;
    static readonly long[] Specials = [XlmrTokenizer.BosId, XlmrTokenizer.EosId, XlmrTokenizer.PadId, XlmrTokenizer.UnkId, MaskId];

    static MlmMasking Masking(MaskSampling sampling) =>
        new(0.3, 0.8, 0.1, sampling, MaskId, RandomLow: 4, RandomHigh: MaskId, NeverMasked: Specials);

    /// <summary>
    /// Texts of varied length: &lt;s&gt; ids... &lt;/s&gt; then padding, with &lt;unk&gt; and &lt;mask&gt; sprinkled in
    /// (both must stay unselected). Returns ids, mask and each row's count of maskable tokens.
    /// </summary>
    static (long[] Ids, long[] Mask, int[] Maskable) Texts()
    {
        var random = new Random(7);
        var ids = new long[B * L];
        var mask = new long[B * L];
        var maskable = new int[B];
        for (int b = 0; b < B; b++)
        {
            int length = random.Next(3, L + 1);
            for (int t = 0; t < L; t++)
            {
                long id = t == 0 ? XlmrTokenizer.BosId : t == length - 1 ? XlmrTokenizer.EosId : t >= length ? XlmrTokenizer.PadId
                    : random.Next(20) == 0 ? XlmrTokenizer.UnkId : random.Next(40) == 0 ? MaskId : random.Next(4, (int)MaskId);
                ids[b * L + t] = id;
                mask[b * L + t] = t < length ? 1 : 0;
                if (!Specials.Contains(id)) maskable[b]++;
            }
        }
        return (ids, mask, maskable);
    }

    static (long[] Corrupted, long[] Labels, long[] Ids, long[] Mask, int[] Maskable) Run(MaskSampling sampling, long seed)
    {
        var (ids, mask, maskable) = Texts();
        using var idsT = tensor(ids, [B, L]);
        using var maskT = tensor(mask, [B, L]);
        using var generator = new Generator((ulong)seed, CPU);
        var (corrupted, labels) = Masking(sampling).Apply(idsT, maskT, generator);
        using (corrupted)
        using (labels)
            return (corrupted.data<long>().ToArray(), labels.data<long>().ToArray(), ids, mask, maskable);
    }

    [Theory]
    [InlineData(MaskSampling.Exact)]
    [InlineData(MaskSampling.Bernoulli)]
    public void SpecialAndPaddingTokensAreNeverSelectedAndOnlySelectedTokensChange(MaskSampling sampling)
    {
        for (long seed = 0; seed < 4; seed++)
        {
            var (corrupted, labels, ids, _, _) = Run(sampling, seed);
            for (int k = 0; k < ids.Length; k++)
            {
                bool selected = labels[k] != MlmMasking.IgnoreIndex;
                if (Specials.Contains(ids[k])) Assert.False(selected, $"special/pad id {ids[k]} at {k} was selected");
                if (selected) Assert.Equal(ids[k], labels[k]);
                else Assert.Equal(ids[k], corrupted[k]);
                if (selected && corrupted[k] != MaskId) Assert.InRange(corrupted[k], 4, MaskId - 1);
            }
        }
    }

    [Fact]
    public void ExactSamplingSelectsTheRoundedRatioOfEachText()
    {
        var (_, labels, _, _, maskable) = Run(MaskSampling.Exact, 3);
        for (int b = 0; b < B; b++)
        {
            int selected = labels.Skip(b * L).Take(L).Count(x => x != MlmMasking.IgnoreIndex);
            int expected = maskable[b] == 0 ? 0 : Math.Max(1, (int)Math.Round(0.3 * maskable[b], MidpointRounding.ToEven));
            Assert.Equal(expected, selected);
        }
    }

    [Theory]
    [InlineData(MaskSampling.Exact)]
    [InlineData(MaskSampling.Bernoulli)]
    public void SelectionAndReplacementFollowTheRatios(MaskSampling sampling)
    {
        long maskable = 0, selected = 0, masked = 0, replaced = 0, kept = 0;
        for (long seed = 0; seed < 6; seed++)
        {
            var (corrupted, labels, ids, _, counts) = Run(sampling, 10 + seed);
            maskable += counts.Sum();
            for (int k = 0; k < ids.Length; k++)
            {
                if (labels[k] == MlmMasking.IgnoreIndex) continue;
                selected++;
                if (corrupted[k] == MaskId) masked++;
                else if (corrupted[k] == ids[k]) kept++;
                else replaced++;
            }
        }
        Assert.InRange((double)selected / maskable, 0.29, 0.31);
        Assert.InRange((double)masked / selected, 0.78, 0.82);
        Assert.InRange((double)replaced / selected, 0.085, 0.115);   // a random id equal to the original counts as kept (p = 1/1497)
        Assert.InRange((double)kept / selected, 0.085, 0.115);
    }
}
