using System.Diagnostics;
using M3Train.Runtime;
using M3Train.Text;
using Serilog;
using static TorchSharp.torch;

namespace M3Train.Eval;

/// <summary>
/// Evaluates a model on a BEIR set in the BGE-M3 paper's protocol: <c>dense</c> is an exact top-k over the corpus
/// embeddings (chunked on the device, <see cref="ExactDenseSearch"/>); <c>sparse</c> a top-k through an inverted index
/// over lexical weights (<see cref="SparseInvertedIndex"/>); <c>colbert</c> and <c>all</c> re-rank the dense
/// top-<c>rerank-k</c> (<see cref="CandidateReranker"/>); <c>dense+sparse</c> fuses the dense and sparse
/// top-<c>rerank-k</c> by weighted sum (<see cref="ScoreFusion"/>). Metrics: <see cref="RetrievalMetrics"/>.
/// </summary>
/// <remarks>
/// Corpus encodings are cached (<see cref="CorpusEncodingCache"/>) when <see cref="RetrievalEvalOptions.CacheDir"/>
/// is set and a model fingerprint is given. Only the queries that have a relevant document are encoded and searched.
/// Scores that rank are computed reproducibly (dense re-scored in double, ColBERT in float64, sparse in double), so the
/// same encodings give the same report.
/// </remarks>
public sealed class RetrievalEvaluator(IM3Inference inference, Device device)
{
    /// <param name="data">The test set.</param>
    /// <param name="options">Modes, weights, depths, lengths, cache folder.</param>
    /// <param name="modelHash">A fingerprint of the model (<see cref="ContentHash.OfModel"/>); null disables the cache.</param>
    public RetrievalEvaluation Evaluate(BeirDataset data, RetrievalEvalOptions options, string? modelHash)
    {
        options.Validate();
        var modes = options.Modes;
        var parts = RetrievalModes.PartsFor(modes);
        bool reranks = modes.Any(m => m is RetrievalMode.Colbert or RetrievalMode.All or RetrievalMode.DenseSparse);
        int depth = reranks ? Math.Max(options.TopK, options.RerankK) : options.TopK;

        var (corpus, cachePath, reused) = CorpusEncodings(data, options, parts, modelHash);
        var queries = data.EvaluatedQueries;
        Log.Information("Encoding {Count} queries (max {Length} tokens)", queries.Count, options.MaxQueryLength);
        TextEncodings encodedQueries;
        using (var progress = new ProgressTask("encode queries", queries.Count, "texts"))
            encodedQueries = inference.Encode(queries.Select(q => q.Text).ToArray(), options.MaxQueryLength, parts, progress);
        if (encodedQueries.FirstNonFinite() is var (badQuery, queryPart))
            throw NonFinite($"query '{queries[badQuery].Id}'", queryPart);

        var clock = Stopwatch.StartNew();
        SearchHit[][]? dense = null, sparse = null;
        if (parts.HasFlag(EncodingParts.Dense))
            dense = ExactDenseSearch.TopK(encodedQueries, corpus, corpus.Count, depth, device, options.CorpusChunkSize);
        if (modes.Any(m => m is RetrievalMode.Sparse or RetrievalMode.DenseSparse))
        {
            var index = new SparseInvertedIndex(corpus.Lexical);
            sparse = index.Search(encodedQueries.Lexical, depth);
        }
        Log.Information("First-stage search of {Queries} queries over {Documents} documents took {Seconds:F1} s",
            queries.Count, corpus.Count, clock.Elapsed.TotalSeconds);

        double[][]? colbert = null;
        if (modes.Any(m => m is RetrievalMode.Colbert or RetrievalMode.All))
        {
            colbert = new double[queries.Count][];
            using var progress = new ProgressTask("colbert scores", queries.Count, "queries");
            for (int q = 0; q < queries.Count; q++)
            {
                colbert[q] = ColbertScorer.Score(encodedQueries, q, corpus, Candidates(dense![q], options.RerankK).Select(h => h.DocIndex).ToArray(), device);
                progress.Update(q + 1);
            }
        }

        var docIds = data.Corpus.Select(d => d.Id).ToArray();
        var queryIds = queries.Select(q => q.Id).ToArray();
        var weights = options.Weights;
        var reports = new List<ModeReport>();
        foreach (var mode in modes)
        {
            var hits = new SearchHit[queries.Count][];
            for (int q = 0; q < queries.Count; q++)
            {
                var candidates = dense is null ? [] : Candidates(dense[q], options.RerankK);
                hits[q] = mode switch
                {
                    RetrievalMode.Dense => dense![q].Take(options.TopK).ToArray(),
                    RetrievalMode.Sparse => sparse![q].Take(options.TopK).ToArray(),
                    RetrievalMode.Colbert => CandidateReranker.Colbert(candidates, options.TopK, _ => colbert![q]),
                    RetrievalMode.DenseSparse => ScoreFusion.WeightedSum(
                        [(candidates, weights.Dense), (Candidates(sparse![q], options.RerankK), weights.Sparse)], options.TopK),
                    _ => CandidateReranker.Rerank(candidates, options.TopK,
                        RerankTerm.FirstStage(weights.Dense),
                        RerankTerm.Of(weights.Sparse, docs => docs.Select(d => LexicalScore.Of(encodedQueries.Lexical[q], corpus.Lexical[d])).ToArray()),
                        RerankTerm.Of(weights.Colbert, _ => colbert![q])),
                };
            }
            var run = RetrievalRun.FromHits(queryIds, hits, docIds);
            reports.Add(new ModeReport(mode, RetrievalMetrics.Evaluate(run, data.Qrels)));
        }
        return new RetrievalEvaluation(reports, corpus.Count, queries.Count, options, cachePath, reused);
    }

    /// <summary>Scores of non-finite encodings would rank at random: the evaluation stops, naming the text, before any metric is written.</summary>
    static M3TrainException NonFinite(string text, string part) =>
        new(FiniteValues.Problem(text, $"{part} is NaN or infinite, so no metric can be computed", "evaluate"));

    static SearchHit[] Candidates(SearchHit[] hits, int rerankK) => hits.Length <= rerankK ? hits : hits[..rerankK];

    (TextEncodings Encodings, string? CachePath, bool Reused) CorpusEncodings(BeirDataset data, RetrievalEvalOptions options, EncodingParts parts, string? modelHash)
    {
        CorpusEncodingCache? cache = options.CacheDir is not null && modelHash is not null
            ? new CorpusEncodingCache(options.CacheDir, CorpusEncodingCache.KeyOf(modelHash, data.CorpusHash, options.MaxPassageLength))
            : null;
        if (cache?.TryLoad(data.Corpus.Count, parts) is { } cached)
        {
            Log.Information("Reusing cached corpus encodings {Path} ({Count} documents, max {Length} tokens)", cache.Path, cached.Count, options.MaxPassageLength);
            return (cached, cache.Path, true);
        }
        Log.Information("Encoding {Count} documents (max {Length} tokens)", data.Corpus.Count, options.MaxPassageLength);
        TextEncodings encodings;
        using (var progress = new ProgressTask("encode corpus", data.Corpus.Count, "texts"))
            encodings = inference.Encode(data.Corpus.Select(d => d.EncodingText).ToArray(), options.MaxPassageLength, parts, progress);
        if (encodings.FirstNonFinite() is var (badDocument, documentPart))
            throw NonFinite($"{data.CorpusPath}: document '{data.Corpus[badDocument].Id}'", documentPart);
        if (cache is not null)
        {
            cache.Save(encodings);
            Log.Information("Cached corpus encodings in {Path}", cache.Path);
        }
        return (encodings, cache?.Path, false);
    }
}
