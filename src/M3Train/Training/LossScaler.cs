using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// Dynamic loss scaling for fp16 training (<c>train.precision: fp16</c>), as PyTorch's GradScaler and DeepSpeed do it.
/// fp16 holds magnitudes from 6·10⁻⁸ to 65504: small gradients of the activations flush to zero unless the loss is
/// multiplied by a large scale before backward. The trainer backpropagates <see cref="Scale"/> · loss
/// (<see cref="StepContext.Scale"/>); <see cref="StepUpdate"/> divides the summed gradients by it before clipping, and a
/// step whose gradients overflowed (inf or NaN with a finite loss) is skipped and the scale halved
/// (<see cref="Backoff"/>). After <c>train.loss_scale_window</c> steps without an overflow the scale doubles
/// (<see cref="Grew"/>), so it settles just below where gradients overflow.
/// </summary>
public sealed class LossScaler
{
    /// <summary>Factor of the scale after <see cref="Window"/> good steps; PyTorch's and DeepSpeed's.</summary>
    public const double GrowthFactor = 2.0;

    /// <summary>Factor of the scale after an overflow.</summary>
    public const double BackoffFactor = 0.5;

    /// <summary>
    /// The scale never falls below 1: gradients that overflow unscaled are not an fp16 range problem but a diverging run,
    /// and such steps are handled as every non-finite step is.
    /// </summary>
    public const double MinScale = 1.0;

    /// <param name="initialScale">The first scale (<c>train.loss_scale_initial</c>).</param>
    /// <param name="window">Steps without an overflow before the scale grows (<c>train.loss_scale_window</c>).</param>
    /// <param name="resumed">The state saved with a checkpoint, to continue from; null for a fresh run.</param>
    public LossScaler(double initialScale, int window, LossScalerState? resumed = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(initialScale, MinScale);
        ArgumentOutOfRangeException.ThrowIfLessThan(window, 1);
        Window = window;
        State = resumed ?? new LossScalerState(initialScale, 0, 0);
    }

    public int Window { get; }

    /// <summary>The scale, the steps since the last overflow and the overflows so far: saved with each checkpoint.</summary>
    public LossScalerState State { get; private set; }

    /// <summary>What the loss is multiplied by before backward.</summary>
    public double Scale => State.Scale;

    /// <summary>Steps skipped because their gradients overflowed.</summary>
    public long OverflowSteps => State.OverflowSteps;

    /// <summary>Divides every gradient of <paramref name="parameters"/> by <see cref="Scale"/>, in place on its device.</summary>
    public void Unscale(IEnumerable<Parameter> parameters)
    {
        using var noGrad = no_grad();
        double inverse = 1.0 / Scale;
        foreach (var p in parameters)
            p.grad?.mul_(inverse);
    }

    /// <summary>
    /// An overflow: halves the scale and counts the step, or, at <see cref="MinScale"/> already, returns false and leaves
    /// the step to be handled as a non-finite one.
    /// </summary>
    public bool Backoff()
    {
        if (Scale <= MinScale) return false;
        State = new LossScalerState(Math.Max(MinScale, Scale * BackoffFactor), 0, OverflowSteps + 1);
        return true;
    }

    /// <summary>A step whose gradients were finite: the scale doubles after <see cref="Window"/> of them in a row. Returns whether it grew.</summary>
    public bool Grew()
    {
        int good = State.StepsSinceOverflow + 1;
        bool grow = good >= Window;
        State = State with { Scale = grow ? Scale * GrowthFactor : Scale, StepsSinceOverflow = grow ? 0 : good };
        return grow;
    }
}
