using M3Train.Text;
using TorchSharp;
using Xunit;

namespace M3Train.Tests.Text;

public class XlmrTokenizerTests
{
    static readonly XlmrTokenizer Tokenizer =
        XlmrTokenizer.FromFolder(Path.Combine(AppContext.BaseDirectory, "Fixtures", "m3-golden", "tokenizer"));

    [Fact]
    public void MissingModelFileNamesThePath()
    {
        string dir = Path.Combine(Path.GetTempPath(), "m3-no-tokenizer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var e = Assert.Throws<FileNotFoundException>(() => XlmrTokenizer.FromFolder(dir));
            Assert.Contains(Path.Combine(dir, XlmrTokenizer.ModelFileName), e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CorruptModelFileIsInvalidData()
    {
        string dir = Path.Combine(Path.GetTempPath(), "m3-bad-tokenizer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, XlmrTokenizer.ModelFileName), "not a protobuf at all \u0001\u0002");
            var e = Assert.Throws<InvalidDataException>(() => XlmrTokenizer.FromFolder(dir));
            Assert.Contains(XlmrTokenizer.ModelFileName, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TruncationKeepsBosFirstPiecesAndEos()
    {
        int[] full = Tokenizer.Encode("The quick brown fox jumps over the lazy dog near the river bank.");
        int[] cut = Tokenizer.Encode("The quick brown fox jumps over the lazy dog near the river bank.", maxLength: 6);
        Assert.Equal([.. full[..5], XlmrTokenizer.EosId], cut);
        Assert.Equal(full, Tokenizer.Encode("The quick brown fox jumps over the lazy dog near the river bank.", maxLength: full.Length));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Encode("x", maxLength: 1));
    }

    [Fact]
    public void UnknownRunsBecomeOneUnk()
    {
        int[] ids = Tokenizer.Encode("ok 😀😀😀 ok");
        Assert.Single(ids, XlmrTokenizer.UnkId);
        Assert.Equal(ids.Length, Tokenizer.CountTokens("ok 😀😀😀 ok"));
    }

    [Fact]
    public void PaddingIsRightSidedWithMaskAndMultiple()
    {
        var batch = Tokenizer.EncodePadded(["a", "The quick brown fox"], padToMultipleOf: 8);
        int[] a = Tokenizer.Encode("a"), fox = Tokenizer.Encode("The quick brown fox");
        Assert.Equal(2, batch.BatchSize);
        Assert.Equal(0, batch.SequenceLength % 8);
        Assert.True(batch.SequenceLength >= fox.Length && batch.SequenceLength < fox.Length + 8);
        var row0 = batch.InputIds[..batch.SequenceLength];
        Assert.Equal(a.Select(i => (long)i), row0[..a.Length]);
        Assert.All(row0[a.Length..], id => Assert.Equal(XlmrTokenizer.PadId, id));
        Assert.Equal(a.Length, batch.AttentionMask[..batch.SequenceLength].Sum());
        Assert.Equal(fox.Length, batch.AttentionMask[batch.SequenceLength..].Sum());
    }

    [Fact]
    public void DecodeSkipsSpecialsAndRestoresSpaces()
    {
        Assert.Equal("the river bank.", Tokenizer.Decode(Tokenizer.Encode("the river bank.")));
        Assert.Equal("<mask>", Tokenizer.IdToToken(Tokenizer.MaskId));
        Assert.Equal("", Tokenizer.Decode([XlmrTokenizer.BosId, Tokenizer.MaskId, XlmrTokenizer.PadId, XlmrTokenizer.EosId]));
    }

    [Fact]
    public void ToTensorsGivesInt64BatchByLength()
    {
        var batch = Tokenizer.EncodePadded(["a", "The quick brown fox"]);
        var (ids, mask) = batch.ToTensors(torch.CPU);
        using (ids)
        using (mask)
        {
            Assert.Equal(new long[] { 2, batch.SequenceLength }, ids.shape);
            Assert.Equal(torch.ScalarType.Int64, ids.dtype);
            Assert.Equal(torch.ScalarType.Int64, mask.dtype);
            Assert.Equal(batch.InputIds, ids.data<long>().ToArray());
            Assert.Equal(batch.AttentionMask, mask.data<long>().ToArray());
        }
    }
}
