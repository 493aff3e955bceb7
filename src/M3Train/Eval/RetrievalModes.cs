using M3Train.Text;

namespace M3Train.Eval;

/// <summary>Names of <see cref="RetrievalMode"/>s as the CLI and the JSON report write them: dense, sparse, colbert, dense+sparse, all.</summary>
public static class RetrievalModes
{
    public static IReadOnlyList<RetrievalMode> Every { get; } =
        [RetrievalMode.Dense, RetrievalMode.Sparse, RetrievalMode.Colbert, RetrievalMode.DenseSparse, RetrievalMode.All];

    public static string Name(RetrievalMode mode) => mode switch
    {
        RetrievalMode.Dense => "dense",
        RetrievalMode.Sparse => "sparse",
        RetrievalMode.Colbert => "colbert",
        RetrievalMode.DenseSparse => "dense+sparse",
        RetrievalMode.All => "all",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    /// <summary>Parses a comma-separated list (order kept, repeats dropped); <paramref name="source"/> names the option in errors.</summary>
    public static IReadOnlyList<RetrievalMode> Parse(string text, string source = "--modes")
    {
        var modes = new List<RetrievalMode>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var mode = Every.FirstOrDefault(m => Name(m) == part.ToLowerInvariant(), (RetrievalMode)(-1));
            if (mode == (RetrievalMode)(-1))
                throw new M3TrainException($"{source} {text}: unknown mode '{part}' (expected {string.Join(", ", Every.Select(Name))})");
            if (!modes.Contains(mode)) modes.Add(mode);
        }
        return modes.Count > 0 ? modes : throw new M3TrainException($"{source}: no mode given (expected {string.Join(", ", Every.Select(Name))})");
    }

    /// <summary>The representations a set of modes needs (of the corpus and of the queries alike).</summary>
    public static EncodingParts PartsFor(IEnumerable<RetrievalMode> modes)
    {
        EncodingParts parts = 0;
        foreach (var mode in modes)
            parts |= mode switch
            {
                RetrievalMode.Dense => EncodingParts.Dense,
                RetrievalMode.Sparse => EncodingParts.Lexical,
                RetrievalMode.Colbert => EncodingParts.Dense | EncodingParts.Colbert,
                RetrievalMode.DenseSparse => EncodingParts.Dense | EncodingParts.Lexical,
                _ => EncodingParts.All,
            };
        return parts;
    }
}
