using System.Collections.Concurrent;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace M3Train.Model;

/// <summary>
/// The stack of <see cref="XlmRobertaLayer"/>s (HF <c>XLMRobertaEncoder</c>), each optionally run
/// through <see cref="LayerCheckpoint"/>. hidden [B, L, D] fp32, keyMask [B, 1, 1, L] bool or null → [B, L, D] fp32.
/// </summary>
public sealed class XlmRobertaEncoder : nn.Module<Tensor, Tensor?, Tensor>
{
    readonly ModuleList<XlmRobertaLayer> layer;
    readonly ComputeSettings _compute;
    readonly ConcurrentQueue<Tensor> _spentGradients = new();

    public XlmRobertaEncoder(XlmRobertaConfig config, ComputeSettings compute) : base(nameof(XlmRobertaEncoder))
    {
        layer = new ModuleList<XlmRobertaLayer>(
            Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new XlmRobertaLayer(config, compute)).ToArray());
        _compute = compute;
        RegisterComponents();
    }

    /// <summary>The layers, bottom to top.</summary>
    public IReadOnlyList<XlmRobertaLayer> Layers => [.. layer];

    public override Tensor forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null);

    /// <summary>
    /// Runs every layer. With <paramref name="dropoutSeed"/> set, layer i re-seeds dropout with
    /// <c>Mix(seed, i + 1)</c> first, checkpointed or not, so both modes draw the same masks.
    /// </summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask, long? dropoutSeed)
    {
        while (_spentGradients.TryDequeue(out var spent)) spent.Dispose();
        using var scope = NewDisposeScope();
        bool checkpoint = _compute.GradientCheckpointing && training && is_grad_enabled();
        for (int i = 0; i < layer.Count; i++)
        {
            long? seed = dropoutSeed is long s ? DropoutReplay.Mix(s, i + 1) : null;
            if (checkpoint)
                hidden = LayerCheckpoint.Run(layer[i], hidden, keyMask, seed, _spentGradients, _compute.GradientObserver);
            else
            {
                if (seed is long layerSeed) DropoutReplay.Seed(layerSeed, hidden.device);
                hidden = layer[i].forward(hidden, keyMask);
            }
        }
        return hidden.MoveToOuterDisposeScope();
    }
}
