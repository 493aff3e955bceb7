using System.ComponentModel.DataAnnotations;
using M3Train.Config;
using M3Train.Eval;

namespace M3Train.Training;

/// <summary>
/// The <c>train.eval:</c> section: retrieval evaluation during training on a BEIR set, every <see cref="Every"/> steps
/// and at the end, in the modes and protocol of <c>m3train eval</c>. Each evaluation's nDCG@10, Recall@100 and MRR@10 per
/// mode go to metrics.jsonl and TensorBoard as <c>eval_MODE_ndcg@10</c>, <c>eval_MODE_recall@100</c>,
/// <c>eval_MODE_mrr@10</c>. Off unless <see cref="Beir"/> or the three files are set.
/// </summary>
public sealed record TrainEvalConfig : IConfigValidatable
{
    /// <summary>A BEIR folder: corpus.jsonl, queries.jsonl and qrels/test.tsv (or qrels.tsv). Null: give the three files, or evaluate nothing.</summary>
    public string? Beir { get; init; }

    /// <summary>BEIR corpus.jsonl, when not in a <see cref="Beir"/> folder.</summary>
    public string? Corpus { get; init; }

    /// <summary>BEIR queries.jsonl, when not in a <see cref="Beir"/> folder.</summary>
    public string? Queries { get; init; }

    /// <summary>BEIR qrels TSV (query-id, corpus-id, score), when not in a <see cref="Beir"/> folder.</summary>
    public string? Qrels { get; init; }

    /// <summary>Evaluate every this many optimizer steps, and at the last step (0: at the last step only). Default 0.</summary>
    [Range(0, int.MaxValue)] public int Every { get; init; }

    /// <summary>Retrieval modes, as m3train eval's --modes: dense, sparse, colbert, dense+sparse, all. Default all five.</summary>
    public List<string> Modes { get; init; } = [.. RetrievalModes.Every.Select(RetrievalModes.Name)];

    /// <summary>Weights of dense, sparse and colbert scores in dense+sparse and all. Default [1, 0.3, 1] (the paper's).</summary>
    public List<double> Weights { get; init; } = [1.0, 0.3, 1.0];

    /// <summary>Query truncation in tokens (capped at the model's positions). Default 512.</summary>
    [Range(2, int.MaxValue)] public int MaxQueryLength { get; init; } = 512;

    /// <summary>Passage truncation in tokens (capped at the model's positions). Default 512.</summary>
    [Range(2, int.MaxValue)] public int MaxPassageLength { get; init; } = 512;

    /// <summary>Texts per forward pass while evaluating. Default 64.</summary>
    [Range(1, int.MaxValue)] public int BatchSize { get; init; } = 64;

    /// <summary>Whether an evaluation set is configured.</summary>
    public bool Enabled => Beir is not null || Corpus is not null || Queries is not null || Qrels is not null;

    public IEnumerable<(string Key, string Message)> Validate()
    {
        bool files = Corpus is not null || Queries is not null || Qrels is not null;
        if (Beir is not null && files)
            yield return ("beir", "give a BEIR folder or the three files (corpus, queries, qrels), not both.");
        else if (files && (Corpus is null || Queries is null || Qrels is null))
            yield return (Corpus is null ? "corpus" : Queries is null ? "queries" : "qrels", "corpus, queries and qrels go together: give all three (or a BEIR folder as beir).");
        string? modes = null;
        try
        {
            RetrievalModes.Parse(string.Join(',', Modes), "modes");
        }
        catch (M3TrainException e)
        {
            modes = e.Message;
        }
        if (modes is not null) yield return ("modes", modes);
        if (Weights.Count != 3 || Weights.Any(w => !double.IsFinite(w) || w < 0))
            yield return ("weights", $"expected three non-negative numbers (dense, sparse, colbert), got [{string.Join(", ", Weights)}].");
    }

    /// <summary>The corpus, queries and qrels files (from <see cref="Beir"/>'s folder or as given), or an error naming the key.</summary>
    public (string Corpus, string Queries, string Qrels) Files()
    {
        if (Beir is null) return (Corpus!, Queries!, Qrels!);
        if (!Directory.Exists(Beir)) throw new M3TrainException($"train.eval.beir: {Beir} is not a folder (a BEIR set: corpus.jsonl, queries.jsonl, qrels/test.tsv).");
        string qrels = Path.Combine(Beir, "qrels", "test.tsv");
        if (!File.Exists(qrels)) qrels = Path.Combine(Beir, "qrels.tsv");
        foreach (string file in new[] { Path.Combine(Beir, "corpus.jsonl"), Path.Combine(Beir, "queries.jsonl"), qrels })
            if (!File.Exists(file))
                throw new M3TrainException($"train.eval.beir: {file} does not exist (a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/test.tsv or qrels.tsv).");
        return (Path.Combine(Beir, "corpus.jsonl"), Path.Combine(Beir, "queries.jsonl"), qrels);
    }
}
