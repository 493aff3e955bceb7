using System.Text.Json.Nodes;
using M3Train.Checkpoints;
using M3Train.Data;
using M3Train.DataParallel;
using M3Train.Model;
using M3Train.Runtime;
using M3Train.Tests.Data;
using M3Train.Tests.DataParallel;
using M3Train.Tests.Export;
using M3Train.Text;
using M3Train.Training;
using M3Train.Training.Losses;
using M3Train.Training.Pretraining;
using Xunit;
using TorchSharp;
using static TorchSharp.torch;

namespace M3Train.Tests.Training.Pretraining;

[Collection(HostMemoryCollection.Name)]
public sealed class ContrastivePretrainTests(ITestOutputHelper output)
{
    /// <summary>Distinct (query, passage) pairs from the shipped pairs file, numbered so that none repeats.</summary>
    static List<(string Query, string Passage)> Pairs(int count)
    {
        var rows = File.ReadAllLines(TinyRun.Repo("data", "pretrain", "pairs.jsonl"))
            .Select(l => JsonNode.Parse(l)!)
            .Select(n => (Query: n["query"]!.GetValue<string>(), Passage: n["pos"]![0]!.GetValue<string>()))
            .ToList();
        return Enumerable.Range(0, count).Select(i => ($"{rows[i % rows.Count].Query} #{i}", $"#{i} {rows[i % rows.Count].Passage}")).ToList();
    }

    /// <summary>One replica's batch of G = 1 pairs, as the collator makes it (no per-sub-batch padding).</summary>
    static TrainBatch Batch(IReadOnlyList<(string Query, string Passage)> pairs, int passageMaxLen)
    {
        var tokenizer = DataTestFolder.Tokenizer;
        var queries = EncodedBatch.Pad(tokenizer.EncodeBatch(pairs.Select(p => p.Query).ToArray(), 32));
        var passages = EncodedBatch.Pad(tokenizer.EncodeBatch(pairs.Select(p => p.Passage).ToArray(), passageMaxLen));
        return new TrainBatch(0, 0, 0, "pairs", 0, Enumerable.Range(0, pairs.Count).ToArray(), queries, passages, null, 1, false, null, null,
            pairs.Select(p => TextHash.Of(p.Passage)).ToArray(), pairs.Select(p => new[] { TextHash.Of(p.Passage) }).ToArray());
    }

    static M3Checkpoint Model(string folder)
    {
        var checkpoint = M3Checkpoint.Load(folder);
        checkpoint.Model.train();
        return checkpoint;
    }

    static readonly DataParallelGroup Alone = DataParallelGroup.Alone(CPU);

    static readonly LossConfig Loss = new() { Temperature = 0.05 };

    /// <summary>Embeddings [N, D] as the dense representation the objective caches.</summary>
    static M3Representations Dense(Tensor embeddings) => new(embeddings, null, null, null, null);

    [Fact]
    public void GradCacheGradientEqualsTheSinglePassWithDropout()
    {
        // The tiny model with dropout on, so the second pass must replay the first's masks.
        using var temp = new TempFolder();
        string model = temp.Sub("tiny-dropout");
        Directory.CreateDirectory(model);
        foreach (string file in Directory.GetFiles(TinyRun.Repo("data", "models", "tiny-m3")))
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        var config = (JsonObject)JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!;
        config["hidden_dropout_prob"] = 0.1;
        config["attention_probs_dropout_prob"] = 0.1;
        File.WriteAllText(Path.Combine(model, "config.json"), config.ToJsonString());

        using var checkpoint = Model(model);
        var objective = ContrastivePretrainRecipe.Objective(checkpoint.Model, Alone, Loss, subBatchSize: 5, seed: 42);
        var batch = Batch(Pairs(12), 48);
        const long microStep = 3;

        var step = objective.Step(batch, new StepContext(1, microStep));
        var gradCache = checkpoint.Model.named_parameters().Where(p => p.parameter.grad is not null)
            .ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        checkpoint.Model.zero_grad();

        // Single pass: every sub-batch encoded with its graph and the same dropout seed, one loss, one backward.
        Tensor EncodeAll(IReadOnlyList<EncodedBatch> pieces, int stream) => cat(pieces.Select((piece, i) =>
        {
            var (ids, mask) = piece.ToTensors(CPU);
            return checkpoint.Model.Encode(ids, mask, objective.DropoutSeed(microStep, stream, i), parts: EncodingParts.Dense).Dense;
        }).ToList(), 0);
        using var inputs = objective.Loss.Prepare(Alone, batch);
        var single = objective.Loss.Compute(Alone, Dense(EncodeAll(batch.QueryPieces(5).Pieces, 0)), Dense(EncodeAll(batch.PassagePieces(5).Pieces, 1)),
            inputs, microStep).Loss;
        single.backward();

        Assert.Equal(single.item<float>(), step.Loss.item<float>(), 5);
        Assert.NotEmpty(gradCache);
        foreach (var (name, parameter) in checkpoint.Model.named_parameters().Where(p => gradCache.ContainsKey(p.name)))
        {
            float diff = (parameter.grad! - gradCache[name]).abs().max().item<float>();
            float scale = gradCache[name].abs().max().item<float>();
            Assert.True(diff <= 1e-5f * Math.Max(1f, scale), $"{name}: GradCache gradient differs from the single pass by {diff}");
        }
    }

    [Fact]
    public void TwoRanksWithCrossDeviceNegativesEqualOneRankOnTheWholeBatch()
    {
        var pairs = Pairs(12);
        var whole = Batch(pairs, 48);

        using var single = Model(ThreadRanks.ModelDir);
        var expected = ContrastivePretrainRecipe.Objective(single.Model, Alone, Loss, 4, 42).Step(whole, new StepContext(1, 0)).Loss.item<float>();
        var want = ThreadRanks.Grads(single.Model);

        // Each rank takes half of the pairs; its queries also score the other rank's passages.
        var ranks = ThreadRanks.Step(2, (model, group) => ContrastivePretrainRecipe.Objective(model, group, Loss, 4, 42),
            rank => Batch(rank == 0 ? pairs[..6] : pairs[6..], 48), microStep: 0);

        foreach (var rank in ranks)
        {
            Assert.Equal(expected, rank.Loss, 5);
            Assert.Equal(want.Keys.Order(), rank.Grads.Keys.Order());
            foreach (var (name, w) in want)
            {
                float diff = (rank.Grads[name] - w).abs().max().item<float>();
                Assert.True(diff < 1e-5f, $"{name}: two-rank gradient differs by {diff}");
            }
        }
    }

    [Fact]
    public void PeakHostMemoryStaysFlatFrom64To1024PairsAtAFixedSubBatch()
    {
        HostPeak.RequireMeasurable();
        using var checkpoint = Model(TinyRun.Repo("data", "models", "tiny-m3"));
        var objective = ContrastivePretrainRecipe.Objective(checkpoint.Model, Alone, Loss, subBatchSize: 16, seed: 42);
        var pairs = Pairs(1024);
        var small = Batch(pairs[..64], 64);
        var large = Batch(pairs, 64);

        void GradCacheStep(TrainBatch b)
        {
            using var scope = NewDisposeScope();
            objective.Step(b, new StepContext(1, 0));
            checkpoint.Model.zero_grad();
        }
        GradCacheStep(small);   // first use: allocator pools, lazily initialized kernels
        double peak64 = HostPeak.MiB(() => GradCacheStep(small));
        double peak1024 = HostPeak.MiB(() => GradCacheStep(large));

        // What may grow: the loss over the whole batch, whose [B, B] scores and their gradients are O(B²) whatever
        // the sub-batch. Measured alone on cached-like embeddings of 1024 pairs.
        double lossOnly1024 = HostPeak.MiB(() =>
        {
            using var scope = NewDisposeScope();
            var q = nn.functional.normalize(randn(1024, 32), dim: -1).requires_grad_();
            var p = nn.functional.normalize(randn(1024, 32), dim: -1).requires_grad_();
            using var inputs = objective.Loss.Prepare(Alone, large);
            autograd.grad([objective.Loss.Compute(Alone, Dense(q), Dense(p), inputs, 0).Loss], [q, p]);
        });
        // For scale, what the same probe sees when 256 pairs go through in one pass with their whole graph.
        var onePass = Batch(pairs[..256], 64);
        double onePass256 = HostPeak.MiB(() =>
        {
            using var scope = NewDisposeScope();
            var (qi, qm) = onePass.Queries.ToTensors(CPU);
            var (pi, pm) = onePass.Passages!.ToTensors(CPU);
            using var inputs = objective.Loss.Prepare(Alone, onePass);
            objective.Loss.Compute(Alone, checkpoint.Model.Encode(qi, qm, 1, parts: EncodingParts.Dense),
                checkpoint.Model.Encode(pi, pm, 2, parts: EncodingParts.Dense), inputs, 0).Loss.backward();
            checkpoint.Model.zero_grad();
        });
        output.WriteLine($"peak RSS growth over the resident set (passages up to {large.Passages!.SequenceLength} tokens, sub-batch 16): " +
                         $"GradCache 64 pairs {peak64:F1} MiB, 1024 pairs {peak1024:F1} MiB; the loss alone at 1024 pairs {lossOnly1024:F1} MiB; " +
                         $"one pass of 256 pairs {onePass256:F1} MiB");
        // 16 MiB of slack over 960 more pairs is 17 KiB a pair; the one pass needs about 400 KiB a pair.
        // The loss-alone probe is small and sometimes reads low (allocator reuse); its expected size at 1024 pairs is
        // about 30 MiB ([1024, 1024] scores, softmax and gradients), so that is the floor of the allowance.
        Assert.True(peak1024 - peak64 <= Math.Max(lossOnly1024, 32) + 16,
            $"from 64 to 1024 pairs the peak grew by {peak1024 - peak64:F1} MiB, more than the batch-wide loss ({lossOnly1024:F1} MiB) explains");
        Assert.True(onePass256 > peak1024 - peak64, "one pass over a quarter of the batch should need more than GradCache's whole growth");
    }
}
