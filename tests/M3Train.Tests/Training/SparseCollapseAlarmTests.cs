using M3Train.Tests.Checkpoints;
using M3Train.Training;
using Xunit;

namespace M3Train.Tests.Training;

[Collection(SerilogCaptureCollection.Name)]
public class SparseCollapseAlarmTests
{
    [Fact]
    public void GoesOffAfterTheWindowAndHoldsUntilTheShareFallsBelowTheThreshold()
    {
        using var log = new LogCapture();
        var alarm = new SparseCollapseAlarm(threshold: 0.5, window: 2);
        Assert.Null(alarm.Observe(0.6, step: 10));
        string? raised = alarm.Observe(0.7, step: 20);
        Assert.StartsWith("sparse all-zero 70", raised);
        Assert.Single(log.Warnings, w => w.StartsWith("Step 20: ", StringComparison.Ordinal));
        Assert.Equal(raised, alarm.Observe(0.8, step: 30));  // the window starts again, the alarm stays
        Assert.Null(alarm.Observe(0.3, step: 40));
        Assert.Null(alarm.Observe(0.9, step: 50));
        Assert.StartsWith("sparse all-zero 90", alarm.Observe(0.9, step: 60));
        Assert.Equal(2, log.Warnings.Count);
    }
}
