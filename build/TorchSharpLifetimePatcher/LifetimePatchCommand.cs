namespace M3Train.Build;

/// <summary>
/// <c>dotnet TorchSharpLifetimePatcher.dll FILE...</c>: patches each TorchSharp.dll in place. A file it leaves alone is
/// reported in MSBuild's error format, so the build shows the reason as its error, and the exit code is
/// <see cref="Refused"/>; any other failure exits otherwise, which the build reports on its own.
/// </summary>
public static class LifetimePatchCommand
{
    public const int Refused = 2;

    public static int Run(IReadOnlyList<string> files, TextWriter output)
    {
        if (files.Count == 0)
        {
            output.WriteLine("TorchSharpLifetimePatcher: error M3PATCH: usage: TorchSharpLifetimePatcher TorchSharp.dll...");
            return Refused;
        }
        int status = 0;
        foreach (string path in files)
        {
            LifetimePatchReport r;
            try
            {
                r = TorchSharpLifetimePatcher.Patch(path);
            }
            catch (IOException e)
            {
                r = new LifetimePatchReport { Result = LifetimePatchResult.NotManaged, Reason = e.Message };
            }
            switch (r.Result)
            {
                case LifetimePatchResult.NotManaged:
                    output.WriteLine($"{path}: error M3PATCH: {r.Reason}; cannot keep TorchSharp's native arguments alive");
                    status = Refused;
                    break;
                case LifetimePatchResult.NotChecked:
                    output.WriteLine($"{path}: error M3PATCH: {r.Reason}");
                    status = Refused;
                    break;
                default:
                    output.WriteLine($"{path}: {r.Result}, {r.Marked} methods kept whole, {r.Changed} changed");
                    break;
            }
        }
        return status;
    }
}
