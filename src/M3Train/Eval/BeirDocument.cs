namespace M3Train.Eval;

/// <summary>One line of a BEIR <c>corpus.jsonl</c>: <c>{"_id": ..., "title": ..., "text": ...}</c>.</summary>
/// <param name="Id">The document id qrels refer to.</param>
/// <param name="Title">The title, empty when the line has none.</param>
/// <param name="Text">The body.</param>
public sealed record BeirDocument(string Id, string Title, string Text)
{
    /// <summary>What is encoded: <c>title + " " + text</c>, or the text alone when there is no title (BEIR's convention).</summary>
    public string EncodingText => Title.Length == 0 ? Text : $"{Title} {Text}";
}
