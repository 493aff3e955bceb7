using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using M3Train.Config;
using M3Train.Model;

namespace M3Train.Checkpoints;

/// <summary>
/// The <c>README.md</c> of a saved model folder: what the model is, what it was trained from and on, for how many
/// steps, its latest evaluation figures, and how to load it. Written from what a save knows: the encoder's config,
/// the folder it was loaded from, and, when the folder sits in a run folder (<c>RUN/final</c>,
/// <c>RUN/checkpoints/step-N</c>), that run's <c>config.yaml</c> and <c>metrics.jsonl</c>. A fact it cannot find is
/// left out; the card never fails a save.
/// </summary>
public static partial class ModelCard
{
    public const string FileName = "README.md";

    /// <summary>Parts of the metric names that are evaluation figures rather than training losses or health figures.</summary>
    static readonly string[] EvalMarkers = ["ndcg", "recall", "mrr", "map@", "eval"];

    /// <summary>Whether a metrics.jsonl name is an evaluation figure (nDCG, recall, MRR, ...), as the card and the plots show them.</summary>
    public static bool IsEvaluationFigure(string name) => EvalMarkers.Any(m => name.Contains(m, StringComparison.OrdinalIgnoreCase));

    /// <param name="config">The encoder's config.</param>
    /// <param name="target">The model folder's final path.</param>
    /// <param name="source">The folder the model was loaded from, if any.</param>
    public static string Text(XlmRobertaConfig config, string target, string? source)
    {
        string name = StepName().Match(Path.GetFileName(target)) is { Success: true } m ? m.Value : Path.GetFileName(target);
        var run = RunFacts.Find(target);
        string? baseModel = run?.BaseModel ?? source;
        int? steps = StepName().Match(name) is { Success: true } step
            ? int.Parse(step.Groups[1].Value, CultureInfo.InvariantCulture)
            : run?.LastStep;
        string version = typeof(ModelCard).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "";

        var card = new StringBuilder();
        card.Append("---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\n");
        card.Append("tags:\n- sentence-transformers\n- feature-extraction\n- bge-m3\n- m3train\n---\n\n");
        card.Append(CultureInfo.InvariantCulture, $"# {name}\n\n");
        card.Append(CultureInfo.InvariantCulture,
            $"A BGE-M3-style embedding model: XLM-RoBERTa ({config.NumHiddenLayers} layers, hidden size {config.HiddenSize}, " +
            $"up to {config.MaxTokens} tokens) with dense, sparse (lexical) and multi-vector (ColBERT) heads, " +
            $"saved by M3Train {version}.\n\n");
        card.Append("| | |\n| --- | --- |\n");
        if (baseModel is not null) card.Append(CultureInfo.InvariantCulture, $"| Base model | `{baseModel}` |\n");
        if (run?.DataFiles is { Count: > 0 } files) card.Append(CultureInfo.InvariantCulture, $"| Training data | {string.Join(", ", files.Select(f => $"`{f}`"))} |\n");
        if (steps is not null) card.Append(CultureInfo.InvariantCulture, $"| Steps | {steps} |\n");
        if (run?.Evaluation is { Count: > 0 } figures)
            card.Append(CultureInfo.InvariantCulture, $"| Evaluation (step {run.EvaluationStep}) | {string.Join(", ", figures.Select(f => $"{f.Key} {f.Value.ToString("0.####", CultureInfo.InvariantCulture)}"))} |\n");
        card.Append(CultureInfo.InvariantCulture, $"""

            ## Use
            - sentence-transformers, the dense vector (normalized CLS): `SentenceTransformer("path/to/{name}").encode(texts)`
            - FlagEmbedding, all three: `BGEM3FlagModel("path/to/{name}").encode(texts, return_dense=True, return_sparse=True, return_colbert_vecs=True)`
            - M3Train: `m3train encode --model path/to/{name} --input texts.txt --output out.jsonl --dense --sparse --colbert`

            """);
        return card.ToString();
    }

    /// <summary><c>step-N</c> in a checkpoint folder's name, also inside the temporary name it is written under.</summary>
    [GeneratedRegex(@"step-(\d+)")]
    private static partial Regex StepName();

    /// <summary>What the run folder around a model folder says about it.</summary>
    sealed record RunFacts(string? BaseModel, IReadOnlyList<string> DataFiles, int? LastStep, IReadOnlyDictionary<string, double> Evaluation, int? EvaluationStep)
    {
        /// <summary>The run whose <c>config.yaml</c> is in the target's parent (<c>RUN/final</c>) or grandparent (<c>RUN/checkpoints/step-N</c>).</summary>
        public static RunFacts? Find(string target)
        {
            string? parent = Path.GetDirectoryName(target);
            foreach (string? folder in new[] { parent, parent is null ? null : Path.GetDirectoryName(parent) })
            {
                if (folder is null) continue;
                string config = Path.Combine(folder, "config.yaml");
                if (!File.Exists(config)) continue;
                try
                {
                    return Read(config, Path.Combine(folder, "metrics.jsonl"));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or M3TrainException)
                {
                    return null;
                }
            }
            return null;
        }

        static RunFacts Read(string configPath, string metricsPath)
        {
            var root = ConfigParser.ParseFile(configPath) as ConfigNode.Map;
            string? baseModel = Section(root, "model")?.Entries.GetValueOrDefault("path") is ConfigNode.Scalar { Value: { } path } ? path : null;
            var files = Section(root, "data")?.Entries.GetValueOrDefault("files") is ConfigNode.Seq seq
                ? seq.Items.OfType<ConfigNode.Scalar>().Select(s => s.Value ?? "").ToList()
                : [];
            int? lastStep = null, evalStep = null;
            var evaluation = new Dictionary<string, double>();
            if (File.Exists(metricsPath))
                foreach (string line in File.ReadLines(metricsPath))
                {
                    if (string.IsNullOrWhiteSpace(line) || JsonNode.Parse(line) is not JsonObject metrics) continue;
                    int? step = metrics["step"] is JsonValue s && s.TryGetValue(out int n) ? n : null;
                    lastStep = step ?? lastStep;
                    var figures = metrics.Where(kv => IsEvaluationFigure(kv.Key) && kv.Value is JsonValue v && v.TryGetValue(out double _))
                        .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>());
                    if (figures.Count > 0) (evaluation, evalStep) = (figures, step);
                }
            return new RunFacts(baseModel, files, lastStep, evaluation, evalStep);
        }

        static ConfigNode.Map? Section(ConfigNode.Map? root, string name) => root?.Entries.GetValueOrDefault(name) as ConfigNode.Map;
    }
}
