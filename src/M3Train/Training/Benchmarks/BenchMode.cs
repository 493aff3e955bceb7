namespace M3Train.Training.Benchmarks;

/// <summary>What <c>m3train bench</c> measures.</summary>
public enum BenchMode
{
    /// <summary>Training steps (<see cref="BenchTrainingStep"/>, the trainer's step) on random-token batches without padding.</summary>
    Step,
    /// <summary>Inference encoding (eval mode, no graph) of the same batches.</summary>
    Encode,
    /// <summary>Tokenizer throughput on real text (<see cref="Text.TokenizerBenchmark"/>).</summary>
    Tokenize,
    /// <summary>The data loader on real data: its own throughput, and how long training steps wait for it.</summary>
    Data,
}
