using M3Train.Cli;
using M3Train.Runtime;
using Xunit;

namespace M3Train.Tests.Cli;

public class ConsoleProgressTests
{
    /// <summary>Renders a task through <paramref name="progress"/> while it is the process's observer.</summary>
    static void Report(ConsoleProgress progress, Action<ProgressTask> work)
    {
        var previous = ProgressTask.Observer;
        ProgressTask.Observer = progress;
        try
        {
            using var task = new ProgressTask("finetune", 320);
            work(task);
        }
        finally
        {
            ProgressTask.Observer = previous;
        }
    }

    /// <summary>The figures the trainer shows: a run's mean loss, lr and throughput, then the last logged step's losses.</summary>
    static readonly (string, double)[] TrainerFigures =
    [
        ("mean loss", 0.9376), ("lr", 6.944e-7), ("tok/s", 716.3),
        ("step 320 loss", 1.4777), ("dense", 2.773), ("sparse", 2.123), ("colbert", 1.882), ("ensemble", 1.216), ("distill", 1.435),
    ];

    /// <summary>A log line as Serilog's console sink writes it on a terminal: colour codes and words as separate writes.</summary>
    static void WriteLogLine(TextWriter stderr, string message)
    {
        stderr.Write("\u001b[37m");
        stderr.Write("02:15:59");
        stderr.Write("\u001b[39;49m ");
        stderr.Write("INF");
        stderr.Write(" ");
        foreach (string word in message.Split(' '))
        {
            stderr.Write("\u001b[36m");
            stderr.Write(word + " ");
        }
        stderr.Write("\u001b[39;49m");
        stderr.Write(Environment.NewLine);
        stderr.Flush();
    }

    [Fact]
    public void RedirectedOutputGetsPlainLinesWithCountShareAlarmAndMetrics()
    {
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, interactive: false) { PlainInterval = TimeSpan.Zero };
        Report(progress, task =>
        {
            task.Update(5, [("loss", 1.5), ("lr", 2e-5)], "sparse all-zero 80%");
            WriteLogLine(progress.Writer(), "Checkpoint runs/x/checkpoints/step-00000005");
            task.Update(320);
        });
        string[] lines = TerminalScreen.Render(output.ToString(), int.MaxValue).Where(l => l.Length > 0).ToArray();
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("finetune 5/320   2%", lines[0]);
        Assert.EndsWith("[sparse all-zero 80%]  loss 1.5  lr 2e-5", lines[0]);
        Assert.Contains("INF Checkpoint runs/x/checkpoints/step-00000005", lines[1]);
        Assert.StartsWith("finetune 320/320 100%", lines[2]);
        Assert.Contains("loss 1.5", lines[2]);   // the metrics stay until new ones come
        Assert.DoesNotContain("\u001b[2K", output.ToString());
    }

    [Theory]
    [InlineData(80)]
    [InlineData(100)]
    [InlineData(120)]
    [InlineData(160)]
    public void OnATerminalLogLinesPrintWholeAboveABarThatFitsTheWidth(int width)
    {
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, interactive: true, () => width);
        var stderr = progress.Writer();
        Report(progress, task =>
        {
            for (int step = 1; step <= 320; step++)
            {
                task.Update(step, TrainerFigures, step >= 300 ? "dense collapsed" : null);
                if (step % 100 == 0) WriteLogLine(stderr, $"Checkpoint /tmp/run/checkpoints/step-{step:00000000}");
            }
            WriteLogLine(stderr, "Done: 320/320 steps, 0 skipped. Model: /tmp/run/final");
        });

        var rows = TerminalScreen.Render(output.ToString(), width);
        // Three checkpoints and the summary, each whole on its own row, then the bar once, then the cursor's empty row.
        Assert.Equal(6, rows.Count);
        for (int i = 0; i < 3; i++)
            Assert.EndsWith($"INF Checkpoint /tmp/run/checkpoints/step-{(i + 1) * 100:00000000}", rows[i]);
        Assert.EndsWith("Model: /tmp/run/final", rows[3]);
        string bar = rows[4];
        Assert.StartsWith("finetune 320/320 100%", bar);
        Assert.True(bar.Length < width, $"the bar takes {bar.Length} of {width} columns: {bar}");
        Assert.Contains("[dense collapsed]", bar);
        if (width >= 100) Assert.Contains("mean loss 0.9376", bar);
        Assert.Equal("", rows[5]);
        // Every redraw fits: no frame of the bar ever reaches the last column, where a terminal would wrap it.
        foreach (string frame in output.ToString().Split("\r\u001b[2K").Skip(1))
            Assert.True(frame.TrimEnd('\r', '\n').Length < width || frame.Contains("INF"), $"a frame of {frame.Length} columns at width {width}");
    }

    [Fact]
    public void ABarLeavesOutTheMetricsThatDoNotFitAndKeepsTheRestWhole()
    {
        var progress = new ConsoleProgress(new StringWriter(), interactive: true, () => 100);
        string full = "", cut = "";
        Report(progress, task =>
        {
            task.Update(10, TrainerFigures);
            full = progress.Line(task);
            cut = progress.Line(task, 99);
        });
        Assert.True(full.Length > 99);
        Assert.True(cut.Length <= 99);
        Assert.StartsWith(cut, full);          // a prefix of whole metrics
        Assert.Contains("tok/s 716.3", cut);
        Assert.DoesNotContain("distill", cut);
    }

    [Fact]
    public void ATaskInsideAnotherIsClearedWhenItEndsAndTheOuterBarComesBack()
    {
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, interactive: true, () => 120);
        Report(progress, task =>
        {
            task.Update(100, [("mean loss", 1.0)]);
            using (var inner = new ProgressTask("encode corpus", 1086, "texts"))
                inner.Update(1086);
            task.Update(320, [("mean loss", 0.5)]);
        });
        var rows = TerminalScreen.Render(output.ToString(), 120);
        Assert.Equal(2, rows.Count);
        Assert.StartsWith("finetune 320/320 100%", rows[0]);
        Assert.DoesNotContain(rows, r => r.Contains("encode corpus"));
    }

    [Fact]
    public void ALineStartHeldWhileTheBarIsUpIsPrintedWithItsEnd()
    {
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, interactive: true, () => 120);
        Report(progress, task =>
        {
            task.Update(1, [("mean loss", 2.0)]);
            progress.Writer().Write("Saving ");
            progress.Writer().Flush();
            Assert.DoesNotContain("Saving", output.ToString());
            progress.Writer().WriteLine("done");
        });
        var rows = TerminalScreen.Render(output.ToString(), 120);
        Assert.Equal("Saving done", rows[0]);
        Assert.StartsWith("finetune 1/320", rows[1]);
    }
}
