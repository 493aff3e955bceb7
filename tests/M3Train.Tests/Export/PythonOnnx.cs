using System.Diagnostics;
using Xunit;

namespace M3Train.Tests.Export;

/// <summary>Debian's python3-onnx (/usr/bin/python3), used as an independent ONNX checker where it is installed.</summary>
internal static class PythonOnnx
{
    const string Python = "/usr/bin/python3";

    public static bool Available(out string reason)
    {
        if (!File.Exists(Python))
        {
            reason = $"{Python} not found: install python3-onnx to run the ONNX checker";
            return false;
        }
        var (code, output) = Run("import onnx; print(onnx.__version__)");
        reason = code == 0 ? "" : $"{Python} has no onnx module (apt-get install python3-onnx): {output.Trim()}";
        return code == 0;
    }

    /// <summary>check_model on the file (external data included) and strict shape inference; returns the inferred output shapes.</summary>
    public static string CheckAndInferShapes(string modelPath)
    {
        string script = $$"""
            import onnx
            path = {{Quote(modelPath)}}
            onnx.checker.check_model(path, full_check=True)
            model = onnx.load(path, load_external_data=False)
            inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
            def dims(v):
                return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            print("onnx", onnx.__version__, "check_model ok, strict shape inference ok:",
                  ", ".join(f"{o.name} {dims(o)}" for o in inferred.graph.output))
            """;
        var (code, output) = Run(script);
        Assert.True(code == 0, $"onnx checker failed:\n{output}");
        return output.Trim();
    }

    static string Quote(string s) => "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'";

    static (int Code, string Output) Run(string script)
    {
        var start = new ProcessStartInfo(Python) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-");
        using var process = Process.Start(start)!;
        process.StandardInput.Write(script);
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
