namespace M3Train.Eval;

/// <summary>The metrics of one retrieval mode.</summary>
public sealed record ModeReport(RetrievalMode Mode, RetrievalReport Report)
{
    public string Name => RetrievalModes.Name(Mode);
}
