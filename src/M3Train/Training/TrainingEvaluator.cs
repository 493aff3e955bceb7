using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using M3Train.Eval;
using M3Train.Model;
using M3Train.Runtime;
using Serilog;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// Retrieval evaluation during training (<c>train.eval</c>): at the steps it is <see cref="Due"/>, the model (rank 0's) is
/// evaluated on the BEIR set by <see cref="RetrievalEvaluator"/> as <c>m3train eval</c> does it (eval mode, no dropout,
/// no gradients; train mode again after), and the figures are returned for metrics.jsonl and TensorBoard under
/// <see cref="FigureNames"/>. With <c>train.save_best</c> an evaluation that beats every earlier one writes the model to
/// <c>OUTPUT/best</c>. The set is read when the evaluator is made, so a bad path fails before training starts.
/// </summary>
public sealed class TrainingEvaluator
{
    /// <summary>Beside the best model, the step and the figure it was kept for.</summary>
    public const string BestFile = "best.json";

    readonly TrainingSetup _setup;
    readonly TrainEvalConfig _config;
    readonly SaveBestConfig _saveBest;
    readonly BeirDataset _data;
    readonly RetrievalEvalOptions _options;

    TrainingEvaluator(TrainingSetup setup, BeirDataset data, RetrievalEvalOptions options)
    {
        _setup = setup;
        _config = setup.Config.Train.Eval;
        _saveBest = setup.Config.Train.SaveBest;
        _data = data;
        _options = options;
        BestPath = Path.Combine(setup.Output, "best");
        if (_saveBest.Metric is not null && setup.ResumeFrom is not null) Best = ReadBest(BestPath, _saveBest.Metric);
    }

    /// <summary>The evaluator the run's config asks for, or null when <c>train.eval</c> names no set.</summary>
    public static TrainingEvaluator? Create(TrainingSetup setup)
    {
        var config = setup.Config.Train.Eval;
        if (!config.Enabled) return null;
        var (corpus, queries, qrels) = config.Files();
        var data = BeirDataset.Load(corpus, queries, qrels);
        int maxTokens = setup.Model.Config.MaxTokens;
        var options = new RetrievalEvalOptions
        {
            Modes = RetrievalModes.Parse(string.Join(',', config.Modes), "train.eval.modes"),
            Weights = new M3ScoreWeights(config.Weights[0], config.Weights[1], config.Weights[2]),
            MaxQueryLength = Math.Min(config.MaxQueryLength, maxTokens),
            MaxPassageLength = Math.Min(config.MaxPassageLength, maxTokens),
        };
        Log.Information("Evaluating on {Corpus} ({Documents} documents, {Queries} queries) {When}, modes {Modes}",
            corpus, data.Corpus.Count, data.EvaluatedQueries.Count, config.Every > 0 ? $"every {config.Every} steps and at the end" : "at the end",
            string.Join(", ", config.Modes));
        return new TrainingEvaluator(setup, data, options);
    }

    /// <summary>The names an evaluation's figures are logged under: <c>eval_MODE_ndcg@10</c>, <c>eval_MODE_recall@100</c>, <c>eval_MODE_mrr@10</c>.</summary>
    public static IReadOnlyList<string> FigureNames(TrainEvalConfig config) =>
        [.. RetrievalModes.Parse(string.Join(',', config.Modes), "train.eval.modes").SelectMany(m => Figures(RetrievalModes.Name(m), new RetrievalReport(0, 0, 0, 0, 0, 0)).Keys)];

    /// <summary>The folder the best model is written to.</summary>
    public string BestPath { get; }

    /// <summary>The best evaluation so far by <c>train.save_best.metric</c> (its step and value), or null.</summary>
    public (int Step, double Value)? Best { get; private set; }

    /// <summary>The latest evaluation's figures and step, or null before the first.</summary>
    public (int Step, IReadOnlyDictionary<string, double> Figures)? Latest { get; private set; }

    /// <summary>
    /// Whether <paramref name="step"/> is evaluated: every <c>train.eval.every</c> steps and the last of <paramref name="totalSteps"/>,
    /// when <c>train.eval</c> names a set. Static, so the ranks that do not evaluate know when to wait for the one that does.
    /// </summary>
    public static bool Due(TrainEvalConfig config, int step, int totalSteps) =>
        config.Enabled && (step == totalSteps || (config.Every > 0 && step % config.Every == 0));

    /// <summary>Evaluates the model as it is after <paramref name="step"/>; keeps it as the best when it is; returns the figures.</summary>
    public IReadOnlyDictionary<string, double> Evaluate(int step)
    {
        var clock = Stopwatch.StartNew();
        var model = _setup.Model;
        RetrievalEvaluation evaluation;
        using (var scope = NewDisposeScope())
        {
            using var inference = new TorchM3Inference(model, _setup.Tokenizer, _setup.Group.Device, _config.BatchSize);
            try
            {
                evaluation = new RetrievalEvaluator(inference, _setup.Group.Device).Evaluate(_data, _options, modelHash: null);
            }
            finally
            {
                model.train();
            }
        }
        var figures = new Dictionary<string, double>();
        foreach (var mode in evaluation.Modes)
            foreach (var (name, value) in Figures(mode.Name, mode.Report))
                figures[name] = value;
        Latest = (step, figures);
        Log.Information("Evaluation at step {Step} ({Queries} queries, {Seconds:F1} s): {Figures}", step, evaluation.Queries, clock.Elapsed.TotalSeconds,
            string.Join(", ", evaluation.Modes.Select(m => $"{m.Name} nDCG@10 {m.Report.NdcgAt10:F4}")));
        if (_saveBest.Metric is { } metric && figures.TryGetValue(metric, out double current) && Improves(current))
        {
            Best = (step, current);
            SaveBest(step, metric, current);
        }
        return figures;
    }

    /// <summary>The evaluation part of the run's closing line, or null when nothing was evaluated.</summary>
    public string? Summary()
    {
        if (Latest is not { } latest) return null;
        var nDcg = latest.Figures.Where(f => f.Key.EndsWith("_ndcg@10", StringComparison.Ordinal))
            .Select(f => $"{f.Key["eval_".Length..^"_ndcg@10".Length]} {f.Value.ToString("F4", CultureInfo.InvariantCulture)}");
        string text = $"nDCG@10 at step {latest.Step}: {string.Join(", ", nDcg)}.";
        if (Best is { } best && _saveBest.Metric is { } metric)
            text += $" Best {metric} {best.Value.ToString("F4", CultureInfo.InvariantCulture)} at step {best.Step}: {BestPath}.";
        return text;
    }

    bool Improves(double value) => Best is not { } best || (_saveBest.Mode == BestMode.Max ? value > best.Value : value < best.Value);

    static IReadOnlyDictionary<string, double> Figures(string mode, RetrievalReport report) => new Dictionary<string, double>
    {
        [$"eval_{mode}_ndcg@10"] = report.NdcgAt10,
        [$"eval_{mode}_recall@100"] = report.RecallAt100,
        [$"eval_{mode}_mrr@10"] = report.MrrAt10,
    };

    /// <summary>
    /// Writes the model into a temporary folder beside <see cref="BestPath"/> and swaps it in, so a crash leaves the
    /// earlier best model whole; a failed write leaves no temporary folder behind.
    /// </summary>
    void SaveBest(int step, string metric, double value)
    {
        string temp = BestPath + $".tmp-{Guid.NewGuid():N}";
        try
        {
            using (var scope = NewDisposeScope())
                _setup.SaveModel(temp);
            File.WriteAllText(Path.Combine(temp, BestFile), JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["step"] = step, ["metric"] = metric, ["value"] = value, ["mode"] = _saveBest.Mode.ToString().ToLowerInvariant(),
            }));
            AtomicFolder.Replace(temp, BestPath);
        }
        catch when (Directory.Exists(temp))
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
        Log.Information("Best {Metric} so far ({Value:F4} at step {Step}): model written to {Path}", metric, value, step, BestPath);
    }

    /// <summary>On resume, the best kept before the interruption (when it was kept for the same figure).</summary>
    static (int, double)? ReadBest(string folder, string metric)
    {
        string path = Path.Combine(folder, BestFile);
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            return root.GetProperty("metric").GetString() == metric ? (root.GetProperty("step").GetInt32(), root.GetProperty("value").GetDouble()) : null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            Log.Warning("{Path}: unreadable ({Reason}); the best model so far is not known, the next evaluation replaces it", path, e.Message);
            return null;
        }
    }
}
