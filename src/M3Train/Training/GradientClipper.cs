using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Training;

/// <summary>
/// Global-norm gradient clipping that stays on the device: TorchSharp's clip_grad_norm_ returns the norm as a
/// double, which forces a host sync every step. The norm is returned as a 0-d tensor for logging.
/// </summary>
public static class GradientClipper
{
    public static Tensor ClipByGlobalNorm(IEnumerable<Parameter> parameters, double maxNorm)
    {
        var grads = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!).ToList();
        if (grads.Count == 0) return tensor(0f);
        var device = grads[0].device;
        using var scope = NewDisposeScope();
        var norm = stack(grads.Select(g => g.detach().to(float32).norm().to(device))).norm(); // [] fp32
        if (maxNorm > 0)
        {
            var coef = (maxNorm / (norm + 1e-6)).clamp_max(1.0);
            foreach (var g in grads) g.mul_(coef.to(g.device).to(g.dtype));
        }
        return norm.MoveToOuterDisposeScope();
    }
}
