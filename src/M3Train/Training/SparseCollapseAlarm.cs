using Serilog;

namespace M3Train.Training;

/// <summary>
/// Watches the share of texts whose sparse vector is all zero (the best-known failure of unified fine-tuning): when it
/// stays at or above <paramref name="threshold"/> (<c>train.sparse_zero_warning</c>) for <paramref name="window"/>
/// (<c>train.sparse_zero_window</c>) measured steps in a row, it logs a warning and raises <see cref="Current"/>, which
/// holds until the share falls below the threshold. An objective that trains the sparse head keeps one.
/// </summary>
public sealed class SparseCollapseAlarm(double threshold, int window)
{
    int _inARow;

    /// <summary>The alarm text while it holds, else null.</summary>
    public string? Current { get; private set; }

    /// <summary>Takes the share of a measured step (optimizer step <paramref name="step"/>); returns <see cref="Current"/>.</summary>
    public string? Observe(double allZeroShare, int step)
    {
        if (allZeroShare < threshold)
        {
            _inARow = 0;
            return Current = null;
        }
        if (++_inARow < window) return Current;
        Log.Warning("Step {Step}: {Share:P0} of texts have an all-zero sparse vector, at or above {Threshold:P0} for the last {Window} logged steps: " +
                    "the sparse head is collapsing. Consider a lower train.lr, a larger loss.sparse_loss_weight, or loss.use_self_distill.",
            step, allZeroShare, threshold, window);
        _inARow = 0;
        return Current = $"sparse all-zero {allZeroShare:P0}";
    }
}
