using System.Text.Json;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Text;

/// <summary>
/// Parity with HF's fast XLM-R tokenizer on every case of <c>tokenization.json</c>, from the folder in
/// <c>M3_GOLDEN_DIR</c> or the project's copy of the fixtures.
/// </summary>
public class TokenizationGoldenTests
{
    static string GoldenDir => GoldenFolder.Path;

    static readonly Lazy<XlmrTokenizer> Tokenizer = new(() => XlmrTokenizer.FromFolder(Path.Combine(GoldenDir, "tokenizer")));

    static readonly Lazy<JsonElement> Fixture = new(() =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(GoldenDir, "tokenization.json"))).RootElement);

    public static TheoryData<int> Cases()
    {
        var data = new TheoryData<int>();
        int count = Fixture.Value.GetProperty("cases").GetArrayLength();
        for (int i = 0; i < count; i++) data.Add(i);
        return data;
    }

    static (string Text, int[] Ids, int[] Trunc16) Case(int index)
    {
        var c = Fixture.Value.GetProperty("cases")[index];
        return (c.GetProperty("text").GetString()!, Ints(c.GetProperty("fast_ids")), Ints(c.GetProperty("fast_ids_trunc16")));
    }

    static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void EncodeMatchesFastIds(int index)
    {
        var (text, ids, _) = Case(index);
        Assert.Equal(ids, Tokenizer.Value.Encode(text));
        Assert.Equal(ids.Length, Tokenizer.Value.CountTokens(text));
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TruncationTo16MatchesFastIds(int index)
    {
        var (text, _, trunc16) = Case(index);
        Assert.Equal(trunc16, Tokenizer.Value.Encode(text, maxLength: 16));
    }

    [Fact]
    public void SpecialIdsAndVocabularySizeMatchTheFixture()
    {
        var fixture = Fixture.Value;
        var special = fixture.GetProperty("special");
        Assert.Equal(XlmrTokenizer.BosId, special.GetProperty("bos").GetInt32());
        Assert.Equal(XlmrTokenizer.PadId, special.GetProperty("pad").GetInt32());
        Assert.Equal(XlmrTokenizer.EosId, special.GetProperty("eos").GetInt32());
        Assert.Equal(XlmrTokenizer.UnkId, special.GetProperty("unk").GetInt32());
        Assert.Equal(special.GetProperty("mask").GetInt32(), Tokenizer.Value.MaskId);
        Assert.Equal(fixture.GetProperty("vocab_size").GetInt32(), Tokenizer.Value.VocabSize);
    }

    [Fact]
    public void TokensMatchFastTokens()
    {
        foreach (var c in Fixture.Value.GetProperty("cases").EnumerateArray())
        {
            var tokens = c.GetProperty("fast_tokens").EnumerateArray().Select(e => e.GetString()!).ToArray();
            Assert.Equal(tokens, Ints(c.GetProperty("fast_ids")).Select(Tokenizer.Value.IdToToken).ToArray());
        }
    }

    [Fact]
    public void BatchEncodingInParallelKeepsOrderAndEqualsSerialEncoding()
    {
        var texts = Enumerable.Range(0, 40)
            .SelectMany(_ => Fixture.Value.GetProperty("cases").EnumerateArray().Select(c => c.GetProperty("text").GetString()!))
            .ToArray();
        var batch = Tokenizer.Value.EncodeBatch(texts, maxLength: 64);
        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(Tokenizer.Value.Encode(texts[i], 64), batch[i]);
    }
}
