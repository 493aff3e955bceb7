using DataType = Onnx.TensorProto.Types.DataType;

namespace M3Train.Onnx;

/// <summary>
/// Writes the XLM-RoBERTa encoder and the three M3 heads as one ONNX graph (docs/METHOD.md, "Encoder" and "Scores").
/// Shapes: B batch, L tokens, D hidden, H heads, Dh = D/H, F ffn, V vocab, C colbert dim.
/// Linear weights are stored transposed ([in, out]) so a Linear is MatMul + Add; their initializers carry the
/// HF key with a <c>.T</c> suffix to say so.
/// In fp16 the weights, the matrix products and GELU run in float16, while the residual stream, every LayerNorm,
/// the masked softmax and the head outputs stay in float32: LayerNorm's variance and softmax's exp overflow or
/// lose all precision in float16, and float32 residuals keep the rounding error from piling up over 24 layers
/// (the layout of PyTorch autocast).
/// </summary>
internal sealed class M3OnnxGraph
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    public const string DenseVecs = "dense_vecs";
    public const string SparseWeights = "sparse_weights";
    public const string ColbertVecs = "colbert_vecs";

    readonly OnnxGraphBuilder g;
    readonly WeightTable w;
    readonly OnnxEncoderConfig c;
    readonly bool half;
    readonly DataType compute;

    M3OnnxGraph(OnnxGraphBuilder g, WeightTable w, OnnxEncoderConfig c, OnnxPrecision precision)
    {
        this.g = g;
        this.w = w;
        this.c = c;
        half = precision == OnnxPrecision.Fp16;
        compute = half ? DataType.Float16 : DataType.Float;
    }

    /// <summary>Adds inputs, nodes, weights and outputs to <paramref name="g"/>; returns the ColBERT dimension.</summary>
    public static int Write(OnnxGraphBuilder g, OnnxEncoderConfig config, IReadOnlyDictionary<string, OnnxWeight> weights, OnnxPrecision precision)
    {
        var table = new WeightTable(weights);
        if (!table.Has("colbert_linear.weight") || !table.Has("sparse_linear.weight"))
            throw new M3OnnxException("the weights have no M3 heads (colbert_linear.weight and sparse_linear.weight are needed): exporting a model without heads would give meaningless sparse and multi-vector outputs");
        int colbertDim = (int)(table.Find("colbert_linear.weight")!.Shape is [var rows, ..] ? rows : 0);
        var graph = new M3OnnxGraph(g, table, config, precision);
        graph.WriteAll(colbertDim);
        table.ThrowIfInvalid();
        return colbertDim;
    }

    void WriteAll(int colbertDim)
    {
        g.Input(InputIds, DataType.Int64, "batch", "sequence");
        g.Input(AttentionMask, DataType.Int64, "batch", "sequence");

        string x = Embeddings();
        string keyBias = KeyPaddingBias();
        for (int i = 0; i < c.NumHiddenLayers; i++)
            x = Layer(i, x, keyBias);

        g.Scope = "heads";
        Dense(x);
        Sparse(x);
        Colbert(x, colbertDim);

        g.Output(DenseVecs, DataType.Float, "batch", c.HiddenSize.ToString());
        g.Output(SparseWeights, DataType.Float, "batch", "sequence");
        g.Output(ColbertVecs, DataType.Float, "batch", "sequence_minus_1", colbertDim.ToString());
    }

    /// <summary>word + token type 0 + position, then LayerNorm; float32 [B, L, D].</summary>
    string Embeddings()
    {
        g.Scope = "embeddings";
        long v = c.VocabSize, d = c.HiddenSize, p = c.MaxPositionEmbeddings;
        string word = g.Node("Gather", [Table("embeddings.word_embeddings.weight", w.Get("embeddings.word_embeddings.weight", v, d), v, d), InputIds]);
        long types = w.Find("embeddings.token_type_embeddings.weight")?.Shape is [var t, _] ? t : 1;
        float[] typeRow0 = w.Get("embeddings.token_type_embeddings.weight", types, d)[..(int)d];
        string type0 = Table("embeddings.token_type_embeddings.weight.row0", typeRow0, d);
        string position = g.Node("Gather", [Table("embeddings.position_embeddings.weight", w.Get("embeddings.position_embeddings.weight", p, d), p, d), PositionIds()]);
        string sum = g.Add(g.Add(ToFloat(word), ToFloat(type0)), ToFloat(position)); // [B, L, D]
        return LayerNorm(sum, "embeddings.LayerNorm");
    }

    /// <summary>
    /// Position ids start at padding_idx + 1 and padding keeps padding_idx: cumsum(mask) * mask + pad with
    /// mask = (input_ids != pad), as HF's create_position_ids_from_input_ids. [B, L] int64.
    /// </summary>
    string PositionIds()
    {
        string notPad = g.Node("Not", [g.Node("Equal", [InputIds, g.Int64Scalar(c.PadTokenId)])]);
        string mask = g.Cast(notPad, DataType.Int64);
        string count = g.Node("CumSum", [mask, g.Int64Scalar(1)]);
        return g.Add(g.Mul(count, mask), g.Int64Scalar(c.PadTokenId));
    }

    /// <summary>0 for keys to attend, float32's lowest value for padded keys (as HF's extended mask); [B, 1, 1, L].</summary>
    string KeyPaddingBias()
    {
        g.Scope = "attention_mask";
        string attend = g.Cast(AttentionMask, DataType.Bool);
        string bias = g.Node("Where", [attend, g.Scalar(0f, DataType.Float), g.Scalar(float.MinValue, DataType.Float)]);
        return g.Unsqueeze(bias, 1, 2); // [B, 1, 1, L]
    }

    /// <summary>Post-LN transformer layer; float32 [B, L, D] in and out.</summary>
    string Layer(int i, string x, string keyBias)
    {
        string prefix = $"encoder.layer.{i}";
        g.Scope = $"{prefix}.attention";
        long dh = c.HiddenSize / c.NumAttentionHeads;
        string xc = ToCompute(x);
        string q = g.Mul(Linear(xc, $"{prefix}.attention.self.query", c.HiddenSize, c.HiddenSize), g.Scalar((float)(1 / Math.Sqrt(dh)), compute));
        string k = Linear(xc, $"{prefix}.attention.self.key", c.HiddenSize, c.HiddenSize);
        string v = Linear(xc, $"{prefix}.attention.self.value", c.HiddenSize, c.HiddenSize);
        q = g.Transpose(g.Reshape(q, 0, 0, c.NumAttentionHeads, dh), 0, 2, 1, 3); // [B, H, L, Dh]
        k = g.Transpose(g.Reshape(k, 0, 0, c.NumAttentionHeads, dh), 0, 2, 3, 1); // [B, H, Dh, L]
        v = g.Transpose(g.Reshape(v, 0, 0, c.NumAttentionHeads, dh), 0, 2, 1, 3); // [B, H, L, Dh]
        string scores = g.Add(ToFloat(g.MatMul(q, k)), keyBias); // [B, H, L, L]
        string probs = g.Node("Softmax", [scores], null, OnnxGraphBuilder.Int("axis", -1));
        string context = g.MatMul(ToCompute(probs), v); // [B, H, L, Dh]
        context = g.Reshape(g.Transpose(context, 0, 2, 1, 3), 0, 0, c.HiddenSize); // [B, L, D]
        string attention = Linear(context, $"{prefix}.attention.output.dense", c.HiddenSize, c.HiddenSize);
        x = LayerNorm(g.Add(ToFloat(attention), x), $"{prefix}.attention.output.LayerNorm");

        g.Scope = $"{prefix}.ffn";
        string inner = Gelu(Linear(ToCompute(x), $"{prefix}.intermediate.dense", c.HiddenSize, c.IntermediateSize)); // [B, L, F]
        string output = Linear(inner, $"{prefix}.output.dense", c.IntermediateSize, c.HiddenSize); // [B, L, D]
        return LayerNorm(g.Add(ToFloat(output), x), $"{prefix}.output.LayerNorm");
    }

    /// <summary>CLS state, L2-normalized; [B, D].</summary>
    void Dense(string hidden)
    {
        string cls = g.Node("Gather", [hidden, g.Int64Scalar(0)], null, OnnxGraphBuilder.Int("axis", 1)); // [B, D]
        Normalize(cls, DenseVecs);
    }

    /// <summary>relu(sparse_linear(H)) per token, zero at the special ids; [B, L].</summary>
    void Sparse(string hidden)
    {
        string logits = ToFloat(Linear(ToCompute(hidden), "sparse_linear", c.HiddenSize, 1)); // [B, L, 1]
        string weights = g.Squeeze(g.Node("Relu", [logits]), 2); // [B, L]
        string? special = null;
        foreach (int id in c.SpecialTokenIds.Distinct())
        {
            string isId = g.Node("Equal", [InputIds, g.Int64Scalar(id)]);
            special = special == null ? isId : g.Node("Or", [special, isId]);
        }
        if (special == null)
            g.Node("Identity", [weights], SparseWeights);
        else
            g.Node("Where", [special, g.Scalar(0f, DataType.Float), weights], SparseWeights);
    }

    /// <summary>colbert_linear(H[:, 1:]) with padded rows zeroed, each row L2-normalized; [B, L-1, C].</summary>
    void Colbert(string hidden, int colbertDim)
    {
        string tokens = g.SliceFrom(hidden, 1, 1); // [B, L-1, D]
        string vectors = ToFloat(Linear(ToCompute(tokens), "colbert_linear", c.HiddenSize, colbertDim)); // [B, L-1, C]
        string keep = g.Unsqueeze(g.Cast(g.SliceFrom(AttentionMask, 1, 1), DataType.Float), 2); // [B, L-1, 1]
        Normalize(g.Mul(vectors, keep), ColbertVecs);
    }

    /// <summary>x / max(‖x‖₂, 1e-12) over the last axis, as torch.nn.functional.normalize (zero rows stay zero).</summary>
    void Normalize(string x, string output)
    {
        string norm = g.Node("Max", [g.ReduceL2LastAxis(x), g.Scalar(1e-12f, DataType.Float)]);
        g.Node("Div", [x, norm], output);
    }

    /// <summary>Exact GELU, x·½·(1 + erf(x/√2)): the <c>Gelu</c> operator needs opset 20.</summary>
    string Gelu(string x)
    {
        string erf = g.Node("Erf", [g.Mul(x, g.Scalar((float)(1 / Math.Sqrt(2)), compute))]);
        return g.Mul(g.Mul(x, g.Scalar(0.5f, compute)), g.Add(erf, g.Scalar(1f, compute)));
    }

    /// <summary>x·Wᵀ + b in the compute type, from HF's [out, in] weight.</summary>
    string Linear(string x, string key, long inFeatures, long outFeatures)
    {
        float[] weight = w.Get($"{key}.weight", outFeatures, inFeatures);
        float[] bias = w.Get($"{key}.bias", outFeatures);
        string wt = Table($"{key}.weight.T", Transpose(weight, (int)outFeatures, (int)inFeatures), inFeatures, outFeatures);
        return g.Add(g.MatMul(x, wt), Table($"{key}.bias", bias, outFeatures));
    }

    /// <summary>LayerNormalization over the last axis in float32 (its weights stay float32 in both precisions).</summary>
    string LayerNorm(string x, string key)
    {
        string scale = g.Weight($"{key}.weight", DataType.Float, [c.HiddenSize], w.Get($"{key}.weight", c.HiddenSize));
        string bias = g.Weight($"{key}.bias", DataType.Float, [c.HiddenSize], w.Get($"{key}.bias", c.HiddenSize));
        return g.Node("LayerNormalization", [x, scale, bias], null,
            OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.Float("epsilon", (float)c.LayerNormEps));
    }

    /// <summary>A weight in the compute type.</summary>
    string Table(string name, float[] data, params long[] dims) =>
        g.Weight(name, compute, dims, half ? ToHalf(data) : data);

    string ToCompute(string x) => half ? g.Cast(x, DataType.Float16) : x;

    string ToFloat(string x) => half ? g.Cast(x, DataType.Float) : x;

    static Half[] ToHalf(float[] data)
    {
        var result = new Half[data.Length];
        for (int i = 0; i < data.Length; i++) result[i] = (Half)data[i];
        return result;
    }

    static float[] Transpose(float[] m, int rows, int cols)
    {
        var t = new float[m.Length];
        for (int r = 0; r < rows; r++)
            for (int col = 0; col < cols; col++)
                t[(long)col * rows + r] = m[(long)r * cols + col];
        return t;
    }
}
