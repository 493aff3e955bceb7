namespace M3Train.Data;

/// <summary>A row that cannot be trained on: where it is (<c>file:line</c>, or <c>file: row N</c> in Parquet) and why.</summary>
public sealed record BadRow(string Location, string Reason)
{
    public override string ToString() => $"{Location}: {Reason}";
}
