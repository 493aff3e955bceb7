using M3Train.Checkpoints;
using M3Train.Tests.Checkpoints;
using M3Train.Training;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Training;

/// <summary>
/// Reads the run's own log.jsonl, so it runs alone: a trainer points the process-wide Serilog logger at its
/// run folder, and a trainer of a test running beside it would take this run's lines.
/// </summary>
[Collection(SerilogCaptureCollection.Name)]
public class SparseHealthWarningTests
{
    static List<System.Text.Json.Nodes.JsonNode> Metrics(string output) => FinetuneRecipeTests.Metrics(output);

    [Fact]
    public void LoggedStepsCarryHealthFigures_AndACollapsedSparseHeadIsWarnedAbout()
    {
        using var run = new TinyRun();
        string collapsed = Path.Combine(run.Output + "-model");
        using (var c = M3Checkpoint.Load(TinyRun.Repo("data", "models", "tiny-m3")))
        {
            using (no_grad())
            {
                c.Model.SparseHead.parameters().First(p => p.shape.Length == 2).zero_();
                c.Model.SparseHead.parameters().First(p => p.shape.Length == 1).fill_(-1);
            }
            c.Save(collapsed);
        }
        try
        {
            var config = run.Config(maxSteps: 4);
            config = config with
            {
                Model = config.Model with { Path = collapsed },
                Train = config.Train with { Freeze = ["sparse"], SparseZeroWindow = 2 },
            };
            UnifiedFinetuneRecipe.Run(config);
            var last = Metrics(run.Output).Last();
            Assert.Equal(1.0, last["sparse_zero_share"]!.GetValue<double>());
            Assert.Equal(0.0, last["sparse_active_per_text"]!.GetValue<double>());
            Assert.True(last["dense_pos"] is not null && last["colbert_neg"] is not null);
            var warnings = File.ReadAllLines(Path.Combine(run.Output, "log.jsonl")).Where(l => l.Contains("all-zero sparse vector")).ToList();
            Assert.NotEmpty(warnings);

            using var healthy = new TinyRun();
            UnifiedFinetuneRecipe.Run(healthy.Config(maxSteps: 2));
            var figures = Metrics(healthy.Output).Last();
            Assert.True(figures["sparse_active_per_text"]!.GetValue<double>() > 0);
            Assert.DoesNotContain(File.ReadAllLines(Path.Combine(healthy.Output, "log.jsonl")), l => l.Contains("all-zero sparse vector"));
        }
        finally { Directory.Delete(collapsed, recursive: true); }
    }

}
