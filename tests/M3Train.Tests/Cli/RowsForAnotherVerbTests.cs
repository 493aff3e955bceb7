using M3Train.Cli;
using M3Train.Tests.Export;
using M3Train.Tests.Training;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary>Rows handed to a verb that does not read them: a usage error naming the file, the verbs they are for and what this verb needs.</summary>
public class RowsForAnotherVerbTests
{
    static readonly string TinyModel = TinyRun.Repo("data", "models", "tiny-m3");

    [Fact]
    public void FinetuneOnThePretrainingTextsSaysTheyAreForPretrain()
    {
        using var folder = new TempFolder();
        var (code, error) = CliRun.Run("finetune", "--config", TinyRun.Repo("configs", "quickstart-pretrain.yaml"),
            "--set", $"model.path={TinyModel}", "--set", "data.passage_max_len=128", "--set", $"output_dir={folder.Sub("run")}",
            "--set", $"data.files=[{TinyRun.Repo("data", "pretrain", "texts.jsonl")}]");
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains(
            $"{TinyRun.Repo("data", "pretrain", "texts.jsonl")} holds {{\"text\"}} rows: those are for `m3train pretrain` (RetroMAE) and `m3train encode`; " +
            "finetune needs {\"query\",\"pos\",\"neg\"} rows", error);
    }

    [Fact]
    public void TooFewRowsOfTheWrongKindAreStillReportedAsTheWrongKind()
    {
        // Three fine-tuning rows make no batch of 16 texts: the kind of the rows is what the user must hear about.
        using var folder = new TempFolder();
        string rows = folder.Sub("three.jsonl");
        File.WriteAllLines(rows, File.ReadLines(TinyRun.Repo("data", "train", "nq.jsonl")).Take(3));
        var (code, error) = CliRun.Run("pretrain", "--config", TinyRun.Repo("configs", "quickstart-pretrain.yaml"),
            "--set", $"model.path={TinyModel}", "--set", "data.passage_max_len=128", "--set", $"output_dir={folder.Sub("run")}", "--set", $"data.files=[{rows}]");
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"{rows} holds {{\"query\",\"pos\",\"neg\"}} rows: those are for `m3train finetune`", error);
        Assert.Contains("pretrain with pretrain.objective: retromae needs {\"text\"} rows", error);
        Assert.DoesNotContain("no complete global batch", error);
    }

    [Fact]
    public void EncodeAndScoreOnFineTuningRowsSayWhatTheyTake()
    {
        using var folder = new TempFolder();
        string rows = TinyRun.Repo("data", "train", "nq.jsonl");

        var (code, error) = CliRun.Run("encode", "--model", TinyModel, "--input", rows, "--output", folder.Sub("out.jsonl"));
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains($"{rows}:1 holds {{\"query\",\"pos\",\"neg\"}} rows: those are for `m3train finetune`", error);
        Assert.Contains("encode needs one text a line, or {\"text\"} rows", error);

        (code, error) = CliRun.Run("score", "--model", TinyModel, "--pairs", rows, "--output", folder.Sub("scores.jsonl"));
        Assert.Equal(CliErrors.BadInput, code);
        Assert.Contains("score needs {\"query\",\"passage\"} pairs (one passage a row)", error);
    }
}
