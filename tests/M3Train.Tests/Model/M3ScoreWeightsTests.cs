using M3Train.Model;
using Xunit;

namespace M3Train.Tests.Model;

/// <summary>Score weights are written as they are read ("wd,ws,wc"), so help, logs and --weights speak one form.</summary>
public class M3ScoreWeightsTests
{
    [Theory]
    [InlineData("1,1,1")]
    [InlineData("0.4,0.2,0.4")]
    [InlineData("1,0.3,1")]
    public void TheTextFormReadsBackToTheSameWeights(string text)
    {
        var weights = M3ScoreWeights.Parse(text);
        Assert.Equal(text, weights.ToString());
        Assert.Equal(weights, M3ScoreWeights.Parse(weights.ToString()));
    }

    [Fact]
    public void TheDefaultIsShownAsFlagEmbeddingsOneOneOne() => Assert.Equal("1,1,1", new M3ScoreWeights().ToString());

    [Theory]
    [InlineData("1,1")]
    [InlineData("1,-1,1")]
    [InlineData("0,0,1")]
    [InlineData("a,b,c")]
    public void AnythingElseIsRefusedWithTheFormItTakes(string text) =>
        Assert.Contains("expected three non-negative numbers wd,ws,wc", Assert.Throws<M3TrainException>(() => M3ScoreWeights.Parse(text)).Message);
}
