using TorchSharp;
using TorchSharp.Modules;

namespace M3Train.Training;

/// <summary>AdamW over the trainable parameters, with no weight decay on biases and LayerNorm weights.</summary>
public static class OptimizerFactory
{
    /// <summary>True for parameters that get no weight decay (as the reference: bias and LayerNorm.weight).</summary>
    public static bool NoDecay(string name) =>
        name.EndsWith("bias", StringComparison.Ordinal) ||
        name.Contains("LayerNorm.", StringComparison.Ordinal) || name.Contains("layer_norm.", StringComparison.Ordinal);

    public static AdamW Create(IEnumerable<(string Name, Parameter Param)> named, TrainConfig c)
    {
        var trainable = named.Where(p => p.Param.requires_grad).ToList();
        var decay = trainable.Where(p => !NoDecay(p.Name)).Select(p => p.Param).ToList();
        var noDecay = trainable.Where(p => NoDecay(p.Name)).Select(p => p.Param).ToList();
        var groups = new List<AdamW.ParamGroup>();
        if (decay.Count > 0) groups.Add(new AdamW.ParamGroup(decay, new AdamW.Options { weight_decay = c.WeightDecay }));
        if (noDecay.Count > 0) groups.Add(new AdamW.ParamGroup(noDecay, new AdamW.Options { weight_decay = 0.0 }));
        if (groups.Count == 0) throw new M3TrainException("Nothing to train: every parameter is frozen (see train.freeze / train.fix_encoder).");
        return torch.optim.AdamW(groups, c.Lr, c.AdamBeta1, c.AdamBeta2, c.AdamEpsilon, c.WeightDecay);
    }

    public static void SetLr(AdamW optimizer, double lr)
    {
        foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
    }
}
