namespace M3Train.Data;

/// <summary>What a dataset's rows hold.</summary>
public enum RowKind
{
    /// <summary><c>{"query", "pos", "neg", ...}</c>: a query and its passages (fine-tuning, or contrastive pretraining pairs).</summary>
    Group,
    /// <summary><c>{"text"}</c>: one text (RetroMAE pretraining).</summary>
    Text,
}
