using System.ComponentModel.DataAnnotations;
using M3Train.Config;
using M3Train.Training.Losses;

namespace M3Train.Training;

/// <summary>The <c>model:</c> section: which checkpoint to start from and which heads to train.</summary>
public sealed record ModelSection : IConfigValidatable
{
    /// <summary>Checkpoint folder to start from (BGE-M3, xlm-roberta, or a pretraining output). Required.</summary>
    public string Path { get; init; } = "";

    /// <summary>Heads trained and used in the ensemble and self-distillation: any of dense, sparse, colbert. Default all three.</summary>
    public List<M3Head> Heads { get; init; } = [M3Head.Dense, M3Head.Sparse, M3Head.Colbert];

    /// <summary>Multi-vector size when the heads are initialized (null: the hidden size, as BGE-M3).</summary>
    [Range(1, 65536)] public int? ColbertDim { get; init; }

    /// <summary>L2-normalize dense and multi-vector outputs. Default true.</summary>
    public bool NormalizeEmbeddings { get; init; } = true;

    /// <summary>Accept a checkpoint that lacks some encoder weights (they stay randomly initialized). Default false.</summary>
    public bool AllowMissingKeys { get; init; }

    /// <summary>Accept a checkpoint with weights the model does not use (they are kept and saved again). Default false.</summary>
    public bool AllowUnexpectedKeys { get; init; }

    public IEnumerable<(string Key, string Message)> Validate()
    {
        if (string.IsNullOrWhiteSpace(Path)) yield return ("path", "is required: the checkpoint folder to start from.");
        if (Heads.Count == 0) yield return ("heads", "name at least one of dense, sparse, colbert.");
    }
}
