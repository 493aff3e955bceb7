namespace M3Train.Data;

/// <summary>
/// The row shapes m3train's verbs read, in the words its messages use: what a row must look like, and which verbs a
/// file of another shape is for, so that rows handed to the wrong verb say where they belong.
/// </summary>
public static class RowShapes
{
    /// <summary>A fine-tuning row in full, with the sentence-transformers names the readers also take.</summary>
    public const string GroupSchema =
        "{\"query\": \"...\", \"pos\": [\"...\"], \"neg\": [\"...\"]} (sentence-transformers' {\"anchor\", \"positive\", \"negative\"} too; " +
        "pos/neg a string or a list of strings; optional \"pos_scores\", \"neg_scores\", \"prompt\", \"type\"), or {\"text\": \"...\"} for pretraining";

    /// <summary>The row shape of a kind, short.</summary>
    public static string Name(RowKind kind) => kind == RowKind.Text ? "{\"text\"}" : "{\"query\",\"pos\",\"neg\"}";

    /// <summary>The verbs that read rows of a kind.</summary>
    public static string VerbsFor(RowKind kind) => kind == RowKind.Text
        ? "those are for `m3train pretrain` (RetroMAE) and `m3train encode`"
        : "those are for `m3train finetune`, `m3train pretrain` with pretrain.objective: contrastive, `mine` and `teacher-scores`";

    /// <summary>
    /// "FILE holds {"text"} rows: those are for `m3train pretrain` (RetroMAE) ...; finetune needs {"query","pos","neg"} rows".
    /// </summary>
    /// <param name="where">The file, or file:line.</param>
    /// <param name="holds">What it holds.</param>
    /// <param name="verb">The verb that read it, as the user typed it (e.g. "finetune").</param>
    /// <param name="needs">What the verb needs, in words (e.g. {"query","pos"} pairs).</param>
    public static string Mismatch(string where, RowKind holds, string verb, string needs) =>
        $"{where} holds {Name(holds)} rows: {VerbsFor(holds)}; {verb} needs {needs}";
}
