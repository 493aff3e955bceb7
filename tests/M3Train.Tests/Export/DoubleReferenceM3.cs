using M3Train.Onnx;

namespace M3Train.Tests.Export;

/// <summary>
/// An independent double-precision M3 forward written from docs/METHOD.md ("Encoder", "Scores") with plain loops:
/// the reference the ONNX graph is checked against. Shapes: B batch, L tokens, D hidden, C colbert dim.
/// </summary>
internal sealed class DoubleReferenceM3(OnnxEncoderConfig config, IReadOnlyDictionary<string, OnnxWeight> weights)
{
    readonly int d = config.HiddenSize;

    /// <summary>Outputs for a padded batch: dense [B][D], sparse [B][L], colbert [B][L-1][C].</summary>
    public (double[][] Dense, double[][] Sparse, double[][][] Colbert) Forward(long[] ids, long[] mask, int batch, int length)
    {
        var dense = new double[batch][];
        var sparse = new double[batch][];
        var colbert = new double[batch][][];
        for (int b = 0; b < batch; b++)
        {
            long[] rowIds = ids[(b * length)..((b + 1) * length)];
            long[] rowMask = mask[(b * length)..((b + 1) * length)];
            double[][] h = Encoder(rowIds, rowMask);
            dense[b] = Normalize(h[0]);
            sparse[b] = new double[length];
            for (int t = 0; t < length; t++)
            {
                double w = Math.Max(0, Linear(h[t], "sparse_linear")[0]);
                sparse[b][t] = config.SpecialTokenIds.Contains((int)rowIds[t]) ? 0 : w;
            }
            colbert[b] = new double[length - 1][];
            for (int t = 1; t < length; t++)
                colbert[b][t - 1] = Normalize(Linear(h[t], "colbert_linear").Select(v => v * rowMask[t]).ToArray());
        }
        return (dense, sparse, colbert);
    }

    double[][] Encoder(long[] ids, long[] mask)
    {
        int l = ids.Length;
        var x = new double[l][];
        long position = config.PadTokenId;
        for (int t = 0; t < l; t++)
        {
            bool real = ids[t] != config.PadTokenId;
            long pos = real ? ++position : config.PadTokenId;
            x[t] = new double[d];
            for (int i = 0; i < d; i++)
                x[t][i] = W("embeddings.word_embeddings.weight")[ids[t] * d + i] + W("embeddings.token_type_embeddings.weight")[i]
                          + W("embeddings.position_embeddings.weight")[pos * d + i];
            x[t] = LayerNorm(x[t], "embeddings.LayerNorm");
        }
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            x = Layer(x, mask, $"encoder.layer.{layer}");
        return x;
    }

    double[][] Layer(double[][] x, long[] mask, string p)
    {
        int l = x.Length, heads = config.NumAttentionHeads, dh = d / heads;
        var q = x.Select(r => Linear(r, $"{p}.attention.self.query")).ToArray();
        var k = x.Select(r => Linear(r, $"{p}.attention.self.key")).ToArray();
        var v = x.Select(r => Linear(r, $"{p}.attention.self.value")).ToArray();
        var context = new double[l][];
        for (int t = 0; t < l; t++)
        {
            context[t] = new double[d];
            for (int h = 0; h < heads; h++)
            {
                var scores = new double[l];
                double max = double.NegativeInfinity;
                for (int s = 0; s < l; s++)
                {
                    if (mask[s] == 0) continue;
                    double dot = 0;
                    for (int i = 0; i < dh; i++) dot += q[t][h * dh + i] * k[s][h * dh + i];
                    scores[s] = dot / Math.Sqrt(dh);
                    max = Math.Max(max, scores[s]);
                }
                double sum = 0;
                for (int s = 0; s < l; s++)
                {
                    scores[s] = mask[s] == 0 ? 0 : Math.Exp(scores[s] - max);
                    sum += scores[s];
                }
                for (int s = 0; s < l; s++)
                    for (int i = 0; i < dh; i++)
                        context[t][h * dh + i] += scores[s] / sum * v[s][h * dh + i];
            }
        }
        var result = new double[l][];
        for (int t = 0; t < l; t++)
        {
            double[] attention = Linear(context[t], $"{p}.attention.output.dense");
            double[] a = LayerNorm(attention.Select((val, i) => val + x[t][i]).ToArray(), $"{p}.attention.output.LayerNorm");
            double[] inner = Linear(a, $"{p}.intermediate.dense").Select(Gelu).ToArray();
            double[] output = Linear(inner, $"{p}.output.dense");
            result[t] = LayerNorm(output.Select((val, i) => val + a[i]).ToArray(), $"{p}.output.LayerNorm");
        }
        return result;
    }

    /// <summary>Exact (erf) GELU.</summary>
    static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    /// <summary>erf to ~1e-12 (.NET has none): Taylor series for |x| &lt; 3, the continued fraction of erfc beyond.</summary>
    internal static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double result;
        if (ax < 3)
        {
            double term = ax, sum = ax, x2 = ax * ax;
            for (int n = 1; n < 200 && Math.Abs(term) > 1e-17 * Math.Abs(sum); n++)
            {
                term *= -x2 / n;
                sum += term / (2 * n + 1);
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            double f = 0;
            for (int n = 60; n >= 1; n--) f = n / 2.0 / (ax + f);
            result = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + f);
        }
        return Math.Sign(x) * result;
    }

    double[] Linear(double[] x, string key)
    {
        float[] w = W($"{key}.weight");
        float[] bias = W($"{key}.bias");
        int outputs = bias.Length, inputs = x.Length;
        var y = new double[outputs];
        for (int o = 0; o < outputs; o++)
        {
            double acc = bias[o];
            for (int i = 0; i < inputs; i++) acc += w[o * inputs + i] * x[i];
            y[o] = acc;
        }
        return y;
    }

    double[] LayerNorm(double[] x, string key)
    {
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Average();
        double scale = 1 / Math.Sqrt(variance + config.LayerNormEps);
        float[] g = W($"{key}.weight"), b = W($"{key}.bias");
        return x.Select((v, i) => (v - mean) * scale * g[i] + b[i]).ToArray();
    }

    static double[] Normalize(double[] x)
    {
        double norm = Math.Sqrt(x.Sum(v => v * v));
        return x.Select(v => v / Math.Max(norm, 1e-12)).ToArray();
    }

    float[] W(string key) => weights[key].Data;
}
