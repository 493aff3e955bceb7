using System.Text.RegularExpressions;
using M3Train.Tests.Data;
using Xunit;

namespace M3Train.Tests.Build;

/// <summary>
/// Code comments explain the method by pointing to docs/METHOD.md sections, which ship with the project: every section a
/// comment names exists, and nothing points to documents users do not have.
/// </summary>
public partial class MethodReferencesTests
{
    static IEnumerable<string> Sources() =>
        new[] { "src", "tests" }.SelectMany(dir => Directory.EnumerateFiles(Path.Combine(DataTestFolder.RepoRoot, dir), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && Path.GetFileName(f) != nameof(MethodReferencesTests) + ".cs");

    /// <summary><c>docs/METHOD.md, "A"</c>, <c>docs/METHOD.md ("A", "B")</c>, <c>"A" and "B"</c>, <c>"A" to "B"</c>: the quoted names.</summary>
    [GeneratedRegex("""docs/METHOD\.md,? \(?("[^"]+"(?:(?:, | and | to )"[^"]+")*)""")]
    private static partial Regex SectionReference();

    [GeneratedRegex("^## (.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    [Fact]
    public void EverySectionACommentNamesExistsAndNoneNamesTheSpec()
    {
        string method = File.ReadAllText(Path.Combine(DataTestFolder.RepoRoot, "docs", "METHOD.md"));
        var sections = Heading().Matches(method).Select(m => m.Groups[1].Value.Trim()).ToHashSet();
        int references = 0;
        foreach (string file in Sources())
        {
            string text = File.ReadAllText(file);
            Assert.False(text.Contains("M3-SPEC", StringComparison.Ordinal), $"{file} points to M3-SPEC, which users do not have; point to docs/METHOD.md");
            foreach (Match m in SectionReference().Matches(text))
                foreach (string name in m.Groups[1].Value.Split('"').Where((_, i) => i % 2 == 1))
                {
                    references++;
                    Assert.True(sections.Contains(name), $"{file}: docs/METHOD.md has no section \"{name}\"");
                }
        }
        Assert.True(references > 20, $"only {references} references to docs/METHOD.md sections found");
    }
}
