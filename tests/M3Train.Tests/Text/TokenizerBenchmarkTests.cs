using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Text;

/// <summary>The benchmark's bookkeeping on a small corpus; its speed is reported, not asserted.</summary>
public class TokenizerBenchmarkTests(ITestOutputHelper output)
{
    [Fact]
    public void CountsEveryTokenOfTheCorpusAndReportsAThroughput()
    {
        string golden = Path.Combine(AppContext.BaseDirectory, "Fixtures", "m3-golden");
        var tokenizer = XlmrTokenizer.FromFolder(Path.Combine(golden, "tokenizer"));
        var corpus = TokenizerBenchmark.BuildCorpus([Path.Combine(golden, "spm_corpus.txt")], targetChars: 200_000);
        Assert.True(corpus.Sum(t => t.Length) >= 200_000);

        var result = TokenizerBenchmark.Run(tokenizer, corpus, threads: 1, rounds: 1);

        Assert.Equal(corpus.Sum(t => (long)tokenizer.CountTokens(t)), result.Tokens);
        Assert.Equal(corpus.Count, result.Texts);
        Assert.True(result.TokensPerSecondPerCore > 0);
        output.WriteLine(result.ToString());
    }
}
