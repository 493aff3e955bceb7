namespace M3Train.Eval;

/// <summary>A text and its highest lexical weights, tokens decoded with the tokenizer.</summary>
public sealed record TokenWeightExample(string Text, IReadOnlyList<(string Token, float Weight)> Top);
