namespace M3Train.Training;

/// <summary>What <c>m3train pretrain</c> trains for (<c>pretrain.objective</c>).</summary>
public enum PretrainObjective
{
    /// <summary>RetroMAE on <c>{"text"}</c> rows: encoder MLM plus enhanced decoding from the CLS state (the RetroMAE recipe).</summary>
    Retromae,

    /// <summary>Dense InfoNCE on <c>{"query", "pos"}</c> pairs with in-batch and cross-device negatives (the contrastive pretraining recipe).</summary>
    Contrastive,
}
