using M3Train.Cli;

namespace M3Train.Tests.Cli;

/// <summary>Runs a command line in-process through <see cref="Program.Run"/>, the top-level handler included, capturing its error output.</summary>
internal static class CliRun
{
    public static (int ExitCode, string Error) Run(params string[] args)
    {
        var error = new StringWriter();
        int code = Program.Run(args, error);
        return (code, error.ToString());
    }
}
