namespace M3Train.Tests.Export;

/// <summary>Seeded token batches with padding inside the batch, special and repeated ids.</summary>
internal static class OnnxTestBatches
{
    /// <summary>
    /// Row 0 is full length with an &lt;unk&gt; and a repeated id inside; other rows are shorter (padding on the
    /// right with pad id 1, mask 0); every row starts with &lt;s&gt; (0) and ends with &lt;/s&gt; (2).
    /// </summary>
    public static (long[] Ids, long[] Mask) Make(int batch, int length, int vocab, int seed)
    {
        var random = new Random(seed);
        var ids = new long[batch * length];
        var mask = new long[batch * length];
        Array.Fill(ids, 1L);
        for (int b = 0; b < batch; b++)
        {
            int tokens = b == 0 ? length : b == 1 ? Math.Max(2, length / 2) : random.Next(2, length + 1);
            var row = ids.AsSpan(b * length, tokens);
            row[0] = 0;
            for (int t = 1; t < tokens - 1; t++) row[t] = random.Next(4, vocab);
            row[tokens - 1] = 2;
            if (b == 0 && tokens > 4)
            {
                row[1] = 3;
                row[tokens - 2] = row[2];
            }
            mask.AsSpan(b * length, tokens).Fill(1);
        }
        return (ids, mask);
    }
}
