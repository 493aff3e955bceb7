namespace M3Train.Training.Pretraining;

/// <summary>What <c>m3train pretrain</c> trains for (M3-SPEC section 8).</summary>
public enum PretrainObjective
{
    /// <summary>RetroMAE on <c>{"text"}</c> rows: encoder MLM plus enhanced decoding from the CLS state (<see cref="RetroMaeObjective"/>).</summary>
    Retromae,

    /// <summary>Dense InfoNCE on <c>{"query", "pos"}</c> pairs with in-batch and cross-device negatives (<see cref="ContrastivePretrainObjective"/>).</summary>
    Contrastive,
}
