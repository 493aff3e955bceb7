namespace M3Train.Cli;

/// <summary>What <c>m3train inspect</c> shows, bound once from its options.</summary>
/// <param name="Input">The texts or rows to inspect.</param>
/// <param name="Top">Top-weighted tokens per example text.</param>
/// <param name="Examples">Example texts shown.</param>
/// <param name="Limit">Most input lines read.</param>
public sealed record InspectRequest(FileInfo Input, int Top, int Examples, int Limit);
