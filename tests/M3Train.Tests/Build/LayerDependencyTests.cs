using M3Train.Cli;
using M3Train.Model;
using M3Train.Onnx;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Build;

/// <summary>
/// The layers of docs/ARCHITECTURE.md, read from the compiled assemblies: code in a namespace may use only namespaces
/// of lower layers (and its own). A namespace and the namespaces under it are one unit unless the table names them
/// apart (M3Train.Training.Losses sits below M3Train.Training); the root namespace M3Train stands for itself only.
/// </summary>
public class LayerDependencyTests(ITestOutputHelper output)
{
    /// <summary>Bottom to top; namespaces on one line are peers and must not use each other.</summary>
    static readonly string[][] Layers =
    [
        [Root],
        ["M3Train.Config", "M3Train.Runtime"],
        ["M3Train.Text"],
        ["M3Train.Model"],
        ["M3Train.Checkpoints"],
        ["M3Train.Data", "M3Train.Distributed"],
        ["M3Train.DataParallel", "M3Train.Training.Losses", "M3Train.Eval", "M3Train.Onnx"],
        ["M3Train.Training"],
        ["M3Train.Training.Pretraining", "M3Train.Training.Benchmarks"],
        ["M3Train.Cli"],
    ];

    static readonly string[] Assemblies =
    [
        typeof(M3Model).Assembly.Location,
        typeof(XlmrTokenizer).Assembly.Location,
        typeof(OnnxM3Encoder).Assembly.Location,
        typeof(Program).Assembly.Location,
    ];

    const string Root = "M3Train";

    /// <summary>The table entry a namespace belongs to: the longest one that is it or encloses it.</summary>
    static (string Unit, int Layer)? Place(string ns)
    {
        (string, int)? best = null;
        for (int layer = 0; layer < Layers.Length; layer++)
            foreach (string unit in Layers[layer])
            {
                bool encloses = ns == unit || (unit != Root && ns.StartsWith(unit + ".", StringComparison.Ordinal));
                if (encloses && (best is null || unit.Length > best.Value.Item1.Length)) best = (unit, layer);
            }
        return best;
    }

    /// <summary>Every use that points to a peer or a higher layer, or names a namespace the table lacks.</summary>
    static List<string> Violations(IReadOnlyDictionary<(string From, string To), string> edges)
    {
        var found = new List<string>();
        foreach (var ((from, to), example) in edges.OrderBy(e => e.Key.From).ThenBy(e => e.Key.To))
        {
            if (Place(from) is not { } user || Place(to) is not { } used)
            {
                found.Add($"{from} -> {to}: not in the layer table (add it here and to docs/ARCHITECTURE.md)");
                continue;
            }
            if (user.Unit != used.Unit && used.Layer >= user.Layer)
                found.Add($"{from} -> {to} ({example}): {(used.Layer == user.Layer ? "a peer" : "a higher layer")}");
        }
        return found;
    }

    [Fact]
    public void EveryNamespaceUsesOnlyLowerLayers()
    {
        var edges = new Dictionary<(string From, string To), string>();
        foreach (string assembly in Assemblies)
            foreach (var (edge, example) in NamespaceDependencies.Read(assembly, "M3Train"))
                edges.TryAdd(edge, example);
        foreach (var group in edges.Keys.GroupBy(e => e.From).OrderBy(g => g.Key))
            output.WriteLine($"{group.Key} uses {string.Join(", ", group.Select(e => e.To).Order())}");

        // The reader sees uses inside method bodies, not only in signatures (a check that finds nothing proves nothing).
        Assert.Contains(("M3Train.Training", "M3Train.Model"), edges.Keys);
        Assert.Contains(("M3Train.Cli", "M3Train.Training"), edges.Keys);
        Assert.Contains(("M3Train.Data", "M3Train.Text"), edges.Keys);
        Assert.Empty(Violations(edges));
    }

    [Fact]
    public void AnUpwardOrSidewaysUseIsReported()
    {
        var violations = Violations(new Dictionary<(string, string), string>
        {
            [("M3Train.Data", "M3Train.Training.Losses")] = "BatchCollator.Collate",
            [("M3Train.Eval", "M3Train.Training")] = "ModelInspector.Measure",
            [("M3Train.Eval", "M3Train.Training.Losses")] = "X.Y",
            [("M3Train.Training", "M3Train.Training.Losses")] = "M3BatchLoss._loss",
            [("M3Train.Training.Pretraining", "M3Train.Training")] = "RetroMaeObjective.Step",
            [("M3Train.Widgets", "M3Train.Model")] = "Gadget.Run",
        });
        Assert.Equal(4, violations.Count);
        Assert.Contains(violations, v => v.StartsWith("M3Train.Data -> M3Train.Training.Losses (BatchCollator.Collate): a higher layer", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.StartsWith("M3Train.Eval -> M3Train.Training", StringComparison.Ordinal) && v.EndsWith("a higher layer", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.StartsWith("M3Train.Eval -> M3Train.Training.Losses (X.Y): a peer", StringComparison.Ordinal));
        Assert.Contains(violations, v => v.StartsWith("M3Train.Widgets -> M3Train.Model: not in the layer table", StringComparison.Ordinal));
    }
}
