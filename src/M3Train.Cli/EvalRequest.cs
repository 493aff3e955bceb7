using M3Train.Eval;

namespace M3Train.Cli;

/// <summary>What <c>m3train eval</c> evaluates, bound once from its options.</summary>
/// <param name="Corpus">BEIR corpus.jsonl.</param>
/// <param name="Queries">BEIR queries.jsonl.</param>
/// <param name="Qrels">Qrels TSV.</param>
/// <param name="Options">Modes, weights, depths and cache; the lengths come from <see cref="PairInference"/>.</param>
/// <param name="Output">Where the JSON report also goes, if anywhere.</param>
public sealed record EvalRequest(FileInfo Corpus, FileInfo Queries, FileInfo Qrels, RetrievalEvalOptions Options, FileInfo? Output);
