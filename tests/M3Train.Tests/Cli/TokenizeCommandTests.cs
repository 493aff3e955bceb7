using System.Diagnostics;
using System.Text.Json;
using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Cli;

/// <summary>Runs the real <c>m3train tokenize</c> as a process, so standard input and output are the program's own.</summary>
[Trait("Category", "Slow")]
public class TokenizeCommandTests
{
    static readonly string TokenizerDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "m3-golden", "tokenizer");

    static (int ExitCode, string Stdout, string Stderr) RunM3Train(byte[] stdin, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "m3train.dll"));
        foreach (string a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardInput.BaseStream.Write(stdin);
        process.StandardInput.Close();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void WritesOneJsonLinePerInputLineWithTruncation()
    {
        string[] texts = ["The quick brown fox jumps over the lazy dog near the river bank.", "", "北京是中华人民共和国的首都"];
        var (code, stdout, stderr) = RunM3Train(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", texts) + "\n"),
            "tokenize", "--model", TokenizerDir, "--max-length", "8");
        Assert.True(code == 0, stderr);
        var tokenizer = XlmrTokenizer.FromFolder(TokenizerDir);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            int[] ids = JsonDocument.Parse(lines[i]).RootElement.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            Assert.Equal(tokenizer.Encode(texts[i], 8), ids);
        }
    }

    [Fact]
    public void InvalidUtf8NamesTheLine()
    {
        var (code, _, stderr) = RunM3Train([(byte)'o', (byte)'k', (byte)'\n', 0xFF, 0xFE, (byte)'\n'], "tokenize", "--model", TokenizerDir);
        Assert.Equal(2, code);
        Assert.Contains("stdin:2: invalid UTF-8", stderr);
    }
}
