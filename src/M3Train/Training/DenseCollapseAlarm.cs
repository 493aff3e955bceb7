using Serilog;

namespace M3Train.Training;

/// <summary>
/// Watches the dense head for collapse: CLS embeddings that all point the same way score every passage alike, so a
/// query's positive and its negatives both score about 1 (cosine) and the dense loss sits at ln(group size) whatever the
/// model learns. When, on <paramref name="window"/> (<c>train.dense_collapse_window</c>) measured steps in a row, the
/// mean negative score is at least <see cref="NearOne"/> and the positive scores less than <paramref name="gap"/>
/// (<c>train.dense_collapse_gap</c>) above it, it logs a warning and raises <see cref="Current"/>, which holds until a
/// measured step is healthy again. An objective that trains the normalized dense head keeps one.
/// </summary>
public sealed class DenseCollapseAlarm(double gap, int window)
{
    /// <summary>
    /// A mean negative score this close to 1 means the embeddings barely differ: of a healthy model, unrelated passages
    /// score far lower (BGE-M3's negatives average about 0.4-0.6; the quickstart model's 0.5-0.7).
    /// </summary>
    public const double NearOne = 0.95;

    int _inARow;

    /// <summary>The alarm text while it holds, else null.</summary>
    public string? Current { get; private set; }

    /// <summary>Takes the mean positive and negative dense scores of a measured step (optimizer step <paramref name="step"/>); returns <see cref="Current"/>.</summary>
    public string? Observe(double positive, double negative, int step)
    {
        bool collapsed = negative >= NearOne && positive - negative < gap;
        if (!collapsed)
        {
            _inARow = 0;
            return Current = null;
        }
        if (++_inARow < window) return Current;
        if (Current is null)
            Log.Warning("Step {Step}: dense_pos {Positive:F4} and dense_neg {Negative:F4}, less than {Gap} apart near 1 for the last {Window} logged steps: " +
                        "the dense head has collapsed (every CLS embedding points the same way, loss_dense stays at ln of the group size). " +
                        "Start from a pretrained encoder (m3train pretrain, or a model whose dense embeddings already separate texts), or lower train.lr.",
                step, positive, negative, gap, window);
        return Current = $"dense collapsed: pos {positive:F3} ≈ neg {negative:F3}";
    }
}
