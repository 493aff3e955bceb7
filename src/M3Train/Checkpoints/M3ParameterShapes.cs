using M3Train.Model;

namespace M3Train.Checkpoints;

/// <summary>
/// The parameter names and shapes an <see cref="M3Model"/> of a config has, worked out without building it, so
/// a checkpoint can be matched against them before anything is allocated (a hostile config.json could otherwise
/// ask for gigabytes first). A test keeps this equal to the model's own <c>named_parameters()</c>.
/// Shapes: V vocab, D hidden, P positions, T token types, I intermediate, D' multi-vector size.
/// </summary>
public static class M3ParameterShapes
{
    /// <summary>Every parameter of the model, in no particular order.</summary>
    public static Dictionary<string, long[]> For(XlmRobertaConfig config, int colbertDim, bool withLmHead)
    {
        long v = config.VocabSize, d = config.HiddenSize, p = config.MaxPositionEmbeddings, t = config.TypeVocabSize, i = config.IntermediateSize;
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal)
        {
            ["model.embeddings.word_embeddings.weight"] = [v, d],
            ["model.embeddings.position_embeddings.weight"] = [p, d],
            ["model.embeddings.token_type_embeddings.weight"] = [t, d],
            ["model.embeddings.LayerNorm.weight"] = [d],
            ["model.embeddings.LayerNorm.bias"] = [d],
            ["colbert_linear.weight"] = [colbertDim, d],
            ["colbert_linear.bias"] = [colbertDim],
            ["sparse_linear.weight"] = [1, d],
            ["sparse_linear.bias"] = [1],
        };
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
        {
            string at = $"model.encoder.layer.{layer}.";
            foreach (string projection in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
                Linear(shapes, at + projection, d, d);
            Norm(shapes, at + "attention.output.LayerNorm", d);
            Linear(shapes, at + "intermediate.dense", d, i);
            Linear(shapes, at + "output.dense", i, d);
            Norm(shapes, at + "output.LayerNorm", d);
        }
        if (withLmHead)
        {
            Linear(shapes, "lm_head.dense", d, d);
            Norm(shapes, "lm_head.layer_norm", d);
            shapes["lm_head.bias"] = [v];
        }
        return shapes;
    }

    /// <summary>Bytes of fp32 parameters of these shapes (saturating at long.MaxValue).</summary>
    public static long Fp32Bytes(IEnumerable<long[]> shapes)
    {
        long total = 0;
        foreach (var shape in shapes)
        {
            long? n = TensorEntry.CheckedElements(shape, sizeof(float));
            if (n is null) return long.MaxValue;
            total = total > long.MaxValue - n.Value * sizeof(float) ? long.MaxValue : total + n.Value * sizeof(float);
        }
        return total;
    }

    static void Linear(Dictionary<string, long[]> shapes, string name, long input, long output)
    {
        shapes[name + ".weight"] = [output, input];
        shapes[name + ".bias"] = [output];
    }

    static void Norm(Dictionary<string, long[]> shapes, string name, long size)
    {
        shapes[name + ".weight"] = [size];
        shapes[name + ".bias"] = [size];
    }
}
