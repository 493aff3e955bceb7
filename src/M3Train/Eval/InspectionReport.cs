using System.Globalization;
using System.Text;

namespace M3Train.Eval;

/// <summary>What <see cref="ModelInspector"/> found: health figures per kind of text, positive vs negative score means (for fine-tuning rows) and example token weights.</summary>
public sealed record InspectionReport(
    IReadOnlyList<InspectionGroup> Groups,
    HeadScoreMeans? Positives,
    HeadScoreMeans? Negatives,
    IReadOnlyList<TokenWeightExample> Examples)
{
    public string ToText()
    {
        var text = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        text.AppendLine(inv, $"{"texts",-10} {"count",7} {"tokens/text",12} {"active/text",12} {"all-zero",9} {"mean weight",12} {"colbert self-sim",17}");
        foreach (var g in Groups)
        {
            var f = g.Figures;
            text.AppendLine(inv,
                $"{g.Name,-10} {f.Texts,7} {f.MeanTokens,12:F1} {f.MeanActiveTokens,12:F1} {f.AllZeroShare,9:P1} {f.MeanActiveWeight,12:F4} {f.ColbertSelfSimilarity,17:F4}");
        }
        if (Positives is not null && Negatives is not null)
        {
            text.AppendLine();
            text.AppendLine(inv, $"{"mean score",-10} {"pairs",7} {"dense",9} {"sparse",9} {"colbert",9}");
            foreach (var (name, m) in new[] { ("positives", Positives), ("negatives", Negatives) })
                text.AppendLine(inv, $"{name,-10} {m.Pairs,7} {m.Dense,9:F4} {m.Sparse,9:F4} {m.Colbert,9:F4}");
        }
        if (Examples.Count > 0)
        {
            text.AppendLine();
            text.AppendLine("top-weighted tokens:");
            foreach (var example in Examples)
            {
                string shown = example.Text.Length > 60 ? example.Text[..57] + "..." : example.Text;
                string tokens = example.Top.Count == 0
                    ? "(all zero)"
                    : string.Join(", ", example.Top.Select(t => string.Create(inv, $"{t.Token} {t.Weight:F3}")));
                text.AppendLine(inv, $"  \"{shown.ReplaceLineEndings(" ")}\": {tokens}");
            }
        }
        return text.ToString();
    }
}
