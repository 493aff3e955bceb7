namespace M3Train.Checkpoints;

/// <summary>Parameter-name prefixes of <see cref="Model.M3Model"/> and the file keys they correspond to.</summary>
internal static class M3Keys
{
    /// <summary>The encoder inside M3Model; file keys are the rest of the name (after an optional <c>roberta.</c>).</summary>
    public const string Encoder = "model.";

    public const string LmHead = "lm_head.";

    /// <summary>The tied decoder: its weight is the word embedding matrix, its bias <c>lm_head.bias</c>.</summary>
    public const string LmDecoderWeight = "lm_head.decoder.weight";

    public const string LmDecoderBias = "lm_head.decoder.bias";

    public const string WordEmbeddings = "model.embeddings.word_embeddings.weight";

    public const string LmBias = "lm_head.bias";

    public const string ColbertFile = "colbert_linear.pt";

    public const string SparseFile = "sparse_linear.pt";

    public const string SafetensorsFile = "model.safetensors";

    public const string PickleFile = "pytorch_model.bin";

    public const string ConfigFile = "config.json";

    /// <summary>Encoder keys M3 does not use but keeps for a faithful round trip.</summary>
    public static bool IsPassthrough(string encoderKey) =>
        encoderKey.StartsWith("pooler.", StringComparison.Ordinal) || encoderKey == "embeddings.position_ids";
}
