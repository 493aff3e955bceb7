using M3Train.Model;

namespace M3Train.Eval;

/// <summary>Settings of one <see cref="RetrievalEvaluator"/> run.</summary>
public sealed record RetrievalEvalOptions
{
    /// <summary>Modes to evaluate, in report order. Default: all five.</summary>
    public IReadOnlyList<RetrievalMode> Modes { get; init; } = RetrievalModes.Every;

    /// <summary>Weights of dense+sparse (dense, sparse) and all (all three). Default the paper's MIRACL/MKQA weights (1, 0.3, 1).</summary>
    public M3ScoreWeights Weights { get; init; } = new(1.0, 0.3, 1.0);

    /// <summary>Results kept per query and mode (Recall@100 needs 100). Default 100.</summary>
    public int TopK { get; init; } = 100;

    /// <summary>Depth of the candidate lists that colbert and all re-rank and dense+sparse fuses. Default 200 (the paper's MIRACL setting).</summary>
    public int RerankK { get; init; } = 200;

    /// <summary>Query truncation in tokens. Default 512.</summary>
    public int MaxQueryLength { get; init; } = 512;

    /// <summary>Passage truncation in tokens. Default 512.</summary>
    public int MaxPassageLength { get; init; } = 512;

    /// <summary>Folder for cached corpus encodings; null (the default) caches nothing.</summary>
    public string? CacheDir { get; init; }

    /// <summary>Corpus rows per device chunk of the exact dense search. Default 65536.</summary>
    public int CorpusChunkSize { get; init; } = 65536;

    /// <summary>Throws a <see cref="M3TrainException"/> naming the setting that is out of range.</summary>
    public void Validate()
    {
        if (Modes.Count == 0) throw new M3TrainException("--modes: no mode given");
        if (TopK < 1) throw new M3TrainException($"--top-k {TopK}: must be at least 1");
        if (RerankK < 1) throw new M3TrainException($"--rerank-k {RerankK}: must be at least 1");
        if (MaxQueryLength < 2) throw new M3TrainException($"--max-query-length {MaxQueryLength}: must be at least 2");
        if (MaxPassageLength < 2) throw new M3TrainException($"--max-passage-length {MaxPassageLength}: must be at least 2");
        if (CorpusChunkSize < 1) throw new M3TrainException($"corpus chunk size {CorpusChunkSize}: must be at least 1");
    }
}
