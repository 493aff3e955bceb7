using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using DataType = Onnx.TensorProto.Types.DataType;

namespace M3Train.Onnx;

/// <summary>
/// Writes an ONNX graph node by node: each call adds one standard-domain node and returns its output name.
/// Weights are collected with their data kept aside (<see cref="Weights"/>), so the writer decides at the end
/// whether they go inline or to an external data file. Constants (scalars, shapes, axes) are inline initializers,
/// shared by value. Operators whose form changed between opsets (ReduceL2's axes) are written for <see cref="Opset"/>.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    readonly Dictionary<string, string> constants = new();
    readonly HashSet<string> names = new();
    int nodeCount;

    public OnnxGraphBuilder(string graphName, int opset)
    {
        Graph = new GraphProto { Name = graphName };
        Opset = opset;
    }

    public GraphProto Graph { get; }

    public int Opset { get; }

    /// <summary>Initializers that hold model weights, with their data (not yet placed in the proto).</summary>
    public List<(TensorProto Tensor, Array Data)> Weights { get; } = new();

    /// <summary>Prefix of node and value names written next, e.g. <c>encoder.layer.3.attention</c>.</summary>
    public string Scope { get; set; } = "";

    public void Input(string name, DataType type, params string[] dims) => Graph.Input.Add(ValueInfo(name, type, dims));

    public void Output(string name, DataType type, params string[] dims) => Graph.Output.Add(ValueInfo(name, type, dims));

    /// <summary>Adds one node; returns the name of its (single) output, <paramref name="output"/> when given.</summary>
    public string Node(string opType, string[] inputs, string? output = null, params AttributeProto[] attributes)
    {
        nodeCount++;
        string nodeName = Unique($"{Scope}/{opType}_{nodeCount}");
        output ??= Unique($"{Scope}/{opType}_{nodeCount}_out");
        var node = new NodeProto { OpType = opType, Name = nodeName };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return output;
    }

    public string Weight(string name, DataType type, long[] dims, Array data)
    {
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)type };
        tensor.Dims.AddRange(dims);
        Weights.Add((tensor, data));
        return tensor.Name;
    }

    /// <summary>A float scalar constant (rank 0) of the given float type.</summary>
    public string Scalar(float value, DataType type) =>
        Constant($"{type}:{BitConverter.SingleToInt32Bits(value)}", $"const_{type}_{value:R}".ToLowerInvariant(), type, [],
            type == DataType.Float16 ? MemoryMarshal.AsBytes<Half>([(Half)value]).ToArray() : MemoryMarshal.AsBytes<float>([value]).ToArray());

    /// <summary>An int64 scalar constant (rank 0).</summary>
    public string Int64Scalar(long value) =>
        Constant($"i64:{value}", $"const_i64_{value}", DataType.Int64, [], MemoryMarshal.AsBytes<long>([value]).ToArray());

    /// <summary>A 1-D int64 constant (shapes, axes, starts/ends); kept inline because ORT reads these while loading.</summary>
    public string Int64s(params long[] values) =>
        Constant($"i64s:{string.Join(",", values)}", $"const_i64s_{string.Join("_", values)}".Replace('-', 'm'), DataType.Int64, [values.Length],
            MemoryMarshal.AsBytes<long>(values).ToArray());

    string Constant(string key, string name, DataType type, long[] dims, byte[] bytes)
    {
        if (constants.TryGetValue(key, out var existing)) return existing;
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.AddRange(dims);
        Graph.Initializer.Add(tensor);
        constants[key] = tensor.Name;
        return tensor.Name;
    }

    public string Cast(string x, DataType to) => Node("Cast", [x], null, Int("to", (long)to));

    public string Add(string a, string b) => Node("Add", [a, b]);

    public string Mul(string a, string b) => Node("Mul", [a, b]);

    public string MatMul(string a, string b) => Node("MatMul", [a, b]);

    public string Transpose(string x, params long[] perm) => Node("Transpose", [x], null, Ints("perm", perm));

    public string Reshape(string x, params long[] shape) => Node("Reshape", [x, Int64s(shape)]);

    public string Unsqueeze(string x, params long[] axes) => Node("Unsqueeze", [x, Int64s(axes)]);

    public string Squeeze(string x, params long[] axes) => Node("Squeeze", [x, Int64s(axes)]);

    /// <summary><c>x[..., start:]</c> along one axis.</summary>
    public string SliceFrom(string x, long axis, long start) => Node("Slice", [x, Int64s(start), Int64s(long.MaxValue), Int64s(axis)]);

    /// <summary>L2 norm over the last axis, kept as a size-1 axis: axes are an attribute up to opset 17, an input from 18.</summary>
    public string ReduceL2LastAxis(string x, string? output = null) => Opset >= 18
        ? Node("ReduceL2", [x, Int64s(-1)], output, Int("keepdims", 1))
        : Node("ReduceL2", [x], output, Ints("axes", -1), Int("keepdims", 1));

    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Float(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    string Unique(string name)
    {
        string candidate = name;
        for (int i = 1; !names.Add(candidate); i++) candidate = $"{name}_{i}";
        return candidate;
    }

    static ValueInfoProto ValueInfo(string name, DataType type, string[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (string d in dims)
            shape.Dim.Add(long.TryParse(d, out long v) ? new TensorShapeProto.Types.Dimension { DimValue = v } : new TensorShapeProto.Types.Dimension { DimParam = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
