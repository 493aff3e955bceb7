namespace M3Train.Build;

public enum LifetimePatchResult
{
    /// <summary>Methods were marked now.</summary>
    Patched,
    /// <summary>Every method the rule names was already marked; the file is left as it was.</summary>
    AlreadyPatched,
    /// <summary>The file is not managed code the patch can read; left as it was.</summary>
    NotManaged,
    /// <summary>A TorchSharp.dll other than the one the patch was checked against; left as it was.</summary>
    NotChecked,
}
