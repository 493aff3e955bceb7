using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using M3Train.Onnx;
using YamlDotNet.Core;

namespace M3Train.Cli;

/// <summary>
/// Turns what ends a verb into one line on standard error, <c>error: &lt;file or key&gt;: &lt;what&gt; (&lt;what to do&gt;)</c>,
/// and the exit code:
/// <list type="bullet">
/// <item><see cref="BadInput"/> (2): the command line, a config, an input file or a model must change; the program
/// checked it and said why (<see cref="M3TrainException"/>, <see cref="M3OnnxException"/>, YAML or JSON that does not
/// parse, a path that does not exist, an option the parser refused).</item>
/// <item><see cref="RuntimeFailure"/> (1): the machine failed under a valid request: the file system (read-only, full,
/// permissions, a path through a file), memory, or libtorch.</item>
/// <item><see cref="InternalError"/> (70, sysexits' EX_SOFTWARE): anything else is a bug in m3train; the stack trace is
/// printed with <c>--verbose</c>, and only then.</item>
/// </list>
/// </summary>
public static partial class CliErrors
{
    public const int RuntimeFailure = 1;
    public const int BadInput = 2;
    public const int InternalError = 70;

    /// <summary>Writes the error line for <paramref name="exception"/> (and, for a bug with <paramref name="verbose"/>, its stack trace) and returns the exit code.</summary>
    public static int Report(Exception exception, bool verbose, TextWriter error)
    {
        var (code, message) = Describe(exception);
        error.WriteLine($"error: {message}");
        if (code == InternalError)
            error.WriteLine(verbose ? exception.ToString() : "(this is a bug in m3train: run again with --verbose for the stack trace, and report it)");
        return code;
    }

    /// <summary>The exit code and the message after <c>error: </c>.</summary>
    public static (int Code, string Message) Describe(Exception exception)
    {
        var e = Unwrap(exception);
        for (Exception? x = e; x != null; x = x.InnerException)
            if (x is M3TrainException or M3OnnxException) return (BadInput, x.Message);
        switch (e)
        {
            case YamlException yaml:
                return (BadInput, $"line {yaml.Start.Line}: invalid YAML: {(yaml.InnerException ?? yaml).Message} (fix the file's syntax)");
            case JsonException json:
                return (BadInput, $"{(json.LineNumber is { } line ? $"line {line + 1}: " : "")}invalid JSON: {json.Message} (fix the file's syntax)");
            case FileNotFoundException or DirectoryNotFoundException:
                return (BadInput, Located(e, "not found, or a part of the path is a file", "check the path"));
            case PathTooLongException:
                return (BadInput, Located(e, "path too long", "use a shorter path"));
            case UnauthorizedAccessException:
                return (RuntimeFailure, Located(e, "permission denied", "use a location you can write to, or change its permissions"));
            case IOException io when IsDiskFull(io):
                return (RuntimeFailure, Located(e, "no space left on the device", "free space there, or write to another disk"));
            case IOException io when io.HResult == ReadOnlyFileSystem:
                return (RuntimeFailure, Located(e, "read-only file system", "write to another location"));
            case IOException:
                return (RuntimeFailure, Located(e, FirstLine(StripPath(e.Message)), "check the path, the disk and its permissions"));
            case OutOfMemoryException or InsufficientExecutionStackException:
                return (RuntimeFailure, "out of memory (lower --batch-size or the lengths, or use a machine with more memory)");
            case ExternalException:
                return (RuntimeFailure, $"libtorch: {FirstLine(e.Message)} (for an out-of-memory error, lower the batch size or the lengths)");
            default:
                return (InternalError, $"internal error: {e.GetType().Name}: {FirstLine(e.Message)}");
        }
    }

    /// <summary>errno EROFS, which .NET on Unix passes through as the HResult.</summary>
    const int ReadOnlyFileSystem = 30;

    /// <summary>ENOSPC and EDQUOT on Unix; ERROR_DISK_FULL and ERROR_HANDLE_DISK_FULL on Windows.</summary>
    static bool IsDiskFull(IOException e) => e.HResult is 28 or 122 or unchecked((int)0x80070070) or unchecked((int)0x80070027);

    static Exception Unwrap(Exception e)
    {
        while (true)
        {
            switch (e)
            {
                case AggregateException { InnerExceptions.Count: 1 } a: e = a.InnerExceptions[0]; break;
                case TargetInvocationException { InnerException: { } inner }: e = inner; break;
                case TypeInitializationException { InnerException: { } inner }: e = inner; break;
                default: return e;
            }
        }
    }

    /// <summary><c>path: what (to do)</c>, with the path .NET quoted in the message, when there is one.</summary>
    static string Located(Exception e, string what, string toDo) =>
        QuotedPath().Match(e.Message) is { Success: true } m ? $"{m.Groups[1].Value}: {what} ({toDo})" : $"{what} ({toDo})";

    static string StripPath(string message) => Regex.Replace(QuotedPath().Replace(message, ""), " {2,}", " ").TrimEnd(' ', ':', '.');

    static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    [GeneratedRegex(@"'((?:/|[A-Za-z]:\\)[^']*)'")]
    private static partial Regex QuotedPath();
}
