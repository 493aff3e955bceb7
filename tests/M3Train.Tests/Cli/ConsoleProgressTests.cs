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
            using var task = new ProgressTask("finetune", 10);
            work(task);
        }
        finally
        {
            ProgressTask.Observer = previous;
        }
    }

    [Fact]
    public void RedirectedOutputGetsPlainLinesWithCountShareMetricsAndAlarm()
    {
        var output = new StringWriter();
        Report(new ConsoleProgress(output, interactive: false) { PlainInterval = TimeSpan.Zero }, task =>
        {
            task.Update(5, [("loss", 1.5), ("lr", 2e-5)], "sparse all-zero 80%");
            task.Update(10);
        });
        string[] lines = output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith("finetune 5/10  50%", lines[0]);
        Assert.EndsWith("loss 1.5  lr 2e-5  [sparse all-zero 80%]", lines[0]);
        Assert.StartsWith("finetune 10/10 100%", lines[1]);
        Assert.Contains("loss 1.5", lines[1]);   // the metrics stay until new ones come
        Assert.DoesNotContain('\u001b', output.ToString());
    }

    [Fact]
    public void ATerminalGetsOneLineRedrawnInPlaceAndANewLineAtTheEnd()
    {
        var output = new StringWriter();
        Report(new ConsoleProgress(output, interactive: true), task => task.Update(10, [("loss", 0.25)]));
        string text = output.ToString();
        Assert.StartsWith("\r\u001b[2Kfinetune 10/10 100%", text);
        Assert.EndsWith("loss 0.25" + Environment.NewLine, text);
    }
}
