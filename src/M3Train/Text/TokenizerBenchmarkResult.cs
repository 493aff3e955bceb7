namespace M3Train.Text;

/// <summary>One measurement of <see cref="TokenizerBenchmark"/>: the fastest of its timed rounds.</summary>
/// <param name="Texts">Texts encoded per round.</param>
/// <param name="Chars">UTF-16 characters encoded per round.</param>
/// <param name="Tokens">Tokens produced per round, <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c> included.</param>
/// <param name="Seconds">Wall time of the fastest round.</param>
/// <param name="Threads">Threads that encoded in parallel.</param>
public sealed record TokenizerBenchmarkResult(long Texts, long Chars, long Tokens, double Seconds, int Threads)
{
    public double TokensPerSecondPerCore => Tokens / Seconds / Threads;
    public double CharsPerSecondPerCore => Chars / Seconds / Threads;
    public double CharsPerToken => (double)Chars / Tokens;

    public override string ToString() =>
        $"{TokensPerSecondPerCore / 1e6:F2}M tokens/s per core ({CharsPerSecondPerCore / 1e6:F2}M chars/s, {CharsPerToken:F2} chars/token; " +
        $"{Texts} texts, {Chars / 1e6:F1}M chars, {Tokens} tokens in {Seconds:F3}s on {Threads} thread{(Threads == 1 ? "" : "s")})";
}
