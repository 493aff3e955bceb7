using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using M3Train.Eval;
using Serilog;

namespace M3Train.Cli.Verbs;

/// <summary>
/// <c>m3train mine</c>: ANCE-style hard negatives for fine-tuning rows (docs/METHOD.md, "Hard-negative mining") with optional score
/// filters against false negatives (issue 11); logic in <see cref="HardNegativeMiner"/>. Every other field of a row
/// is written back unchanged.
/// </summary>
public static class MineCommand
{
    static readonly Option<string> RangeOption = new("--range")
    {
        Description = "Dense ranks a-b (0-based, b exclusive) to draw negatives from.",
        DefaultValueFactory = _ => "10-210",
    };

    static readonly Option<int> NegativesOption = new("--negatives")
    {
        Description = "Negatives per row.",
        DefaultValueFactory = _ => 15,
    };

    static readonly Option<FileInfo> PoolOption =
        PathOptions.Input("--candidate-pool", "JSONL of {\"text\": ...} to mine from (default: all pos and neg texts of the input).", required: false);

    static readonly Option<long> SeedOption = new("--seed")
    {
        Description = "Seed of the sampling: the same seed gives the same output.",
        DefaultValueFactory = _ => 42,
    };

    static readonly Option<double?> RelativeMarginOption = new("--relative-margin")
    {
        Description = "Drop candidates scoring above weakest-positive × (1 - X), e.g. 0.05.",
    };

    static readonly Option<double?> AbsoluteMarginOption = new("--absolute-margin")
    {
        Description = "Drop candidates scoring above weakest-positive - X, e.g. 0.02.",
    };

    static readonly Option<string> OnEmptyOption = new Option<string>("--on-empty")
    {
        Description = "A row left with no negative (every candidate filtered out): fill it with random pool texts that are not a positive or the query, drop it, or keep it with \"neg\": [] (fine-tuning refuses such rows when train_group_size > 1).",
        DefaultValueFactory = _ => "fill",
    }.AcceptOnlyFromAmong("fill", "drop", "keep");

    static readonly RowRewriteOptions Rows = new("Where to write the rows with mined \"neg\".");

    public static Command Create()
    {
        var command = new Command("mine", "Mine hard negatives for fine-tuning rows with the model's dense retrieval.")
        {
            RangeOption, NegativesOption, PoolOption, SeedOption, RelativeMarginOption, AbsoluteMarginOption, OnEmptyOption,
        };
        foreach (var option in Rows.All) command.Add(option);
        command.SetAction(parse =>
        {
            var (start, end) = ParseRange(parse.GetValue(RangeOption)!);
            var options = new MiningOptions
            {
                RangeStart = start,
                RangeEnd = end,
                Negatives = parse.GetValue(NegativesOption),
                Seed = parse.GetValue(SeedOption),
                RelativeMargin = parse.GetValue(RelativeMarginOption),
                AbsoluteMargin = parse.GetValue(AbsoluteMarginOption),
                OnEmpty = parse.GetValue(OnEmptyOption) switch
                {
                    "drop" => EmptyNegativesPolicy.Drop,
                    "keep" => EmptyNegativesPolicy.Keep,
                    _ => EmptyNegativesPolicy.Fill,
                },
            };
            return Run(Rows.Bind(parse), parse.GetValue(PoolOption), options);
        });
        return command;
    }

    static int Run(RowRewrite job, FileInfo? pool, MiningOptions options)
    {
        options.Validate();
        VerbOutput.Check("--output", job.Output, ("--input", job.Input), ("--candidate-pool", pool));
        var rows = TrainingRowFile.Read(job.Input.FullName, "mine");
        var poolTexts = pool is null ? null : TrainingRowFile.ReadPool(pool.FullName);
        var (inference, torchDevice) = ModelInference.Load(job.Inference.Run);
        MiningResult result;
        using (inference)
        {
            var (query, passage) = ModelInference.CapLengths(job.Inference, inference);
            options = options with { MaxQueryLength = query, MaxPassageLength = passage, QueryInstruction = job.Inference.Run.QueryInstruction };
            result = new HardNegativeMiner(inference, torchDevice).Mine(rows, poolTexts, options);
        }

        var s = result.Summary;
        Log.Information("Mined {Rows} rows from a pool of {Pool} texts: of {Candidates} ranked candidates, dropped {PositiveOrQuery} that were a positive or the query, {Relative} above the relative margin, {Absolute} above the absolute margin",
            s.Rows, s.PoolSize, s.Candidates, s.DroppedPositiveOrQuery, s.DroppedRelativeMargin, s.DroppedAbsoluteMargin);
        if (s.PaddingNegatives > 0)
            Log.Information("{Rows} rows had fewer than {Negatives} candidates left and were padded with {Padding} random pool texts", s.RowsPadded, options.Negatives, s.PaddingNegatives);
        if (s.RowsShort > 0)
            Log.Warning("{Rows} rows still have fewer than {Negatives} negatives: the pool has no more texts that are not a positive or the query and pass the score filters", s.RowsShort, options.Negatives);
        ReportEmptyRows(result, rows, options);
        if (result.DroppedRows.Count == rows.Count)
            throw new M3TrainException($"{job.Input.FullName}: no row has a negative left, so there is nothing to write (--on-empty fill fills them with random pool texts; --candidate-pool gives more texts to mine from)");

        int removedScores = 0;
        var written = new List<JsonObject>(rows.Count - result.DroppedRows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            if (result.DroppedRows.Contains(i)) continue;
            var (json, removed) = HardNegativeMiner.Rewrite(rows[i], result.Negatives[i]);
            if (removed) removedScores++;
            written.Add(json);
        }
        TrainingRowFile.Write(job.Output.FullName, written);
        if (removedScores > 0)
            Log.Warning("Removed pos_scores/neg_scores from {Rows} rows: they scored the old negatives (run m3train teacher-scores to score the new ones)", removedScores);
        Log.Information("Wrote {Output}", job.Output.FullName);
        return 0;
    }

    /// <summary>Says which rows were left without a negative, why that happens, and what <c>--on-empty</c> did with them.</summary>
    static void ReportEmptyRows(MiningResult result, IReadOnlyList<TrainingRowRecord> rows, MiningOptions options)
    {
        var s = result.Summary;
        if (s.RowsEmpty == 0) return;
        const int Shown = 10;
        string lines = string.Join(", ", result.EmptyRows.Take(Shown).Select(r => rows[r].Line)) + (s.RowsEmpty > Shown ? ", ..." : "");
        string why = s.DroppedRelativeMargin + s.DroppedAbsoluteMargin > 0
            ? $"the score filters dropped {s.DroppedRelativeMargin + s.DroppedAbsoluteMargin} of {s.Candidates} candidates (a dense head that scores every text alike, see m3train inspect, or too large a margin)"
            : "the pool has no text beyond their positives, their query and the ranks before --range";
        Log.Warning("{Rows} of {Total} rows had no negative left (input lines {Lines}): {Why}", s.RowsEmpty, s.Rows, lines, why);
        switch (options.OnEmpty)
        {
            case EmptyNegativesPolicy.Fill:
                Log.Warning("--on-empty fill: filled {Rows} rows with {Texts} random pool texts that are not a positive or the query; the score filters were not applied to them (--on-empty drop leaves such rows out)",
                    s.RowsFilled, s.FillNegatives);
                if (s.RowsDropped > 0)
                    Log.Warning("Left out {Rows} rows: the pool holds no text other than their positives and query", s.RowsDropped);
                break;
            case EmptyNegativesPolicy.Drop:
                Log.Warning("--on-empty drop: left {Rows} rows out of the output", s.RowsDropped);
                break;
            default:
                Log.Warning("--on-empty keep: wrote {Rows} rows with \"neg\": []; fine-tuning refuses them unless train_group_size is 1", s.RowsEmpty);
                break;
        }
    }

    static (int Start, int End) ParseRange(string text)
    {
        string[] parts = text.Split('-', StringSplitOptions.TrimEntries);
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int start)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int end)
            && start < end)
            return (start, end);
        throw new M3TrainException($"--range {text}: expected a-b with 0 <= a < b (ranks, 0-based, b exclusive), e.g. 10-210");
    }
}
