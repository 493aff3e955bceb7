using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;

namespace M3Train.Config;

/// <summary>
/// The summaries of an assembly's doc comments, read from the XML documentation file the compiler writes beside
/// it, as plain text: <c>&lt;c&gt;</c> keeps its text, a <c>&lt;see cref&gt;</c> to a config property becomes that
/// key's name (<c>MaxSteps</c> → <c>max_steps</c>) and to anything else its short name.
/// </summary>
public sealed partial class XmlDocs
{
    readonly Dictionary<string, string> _summaries;

    XmlDocs(Dictionary<string, string> summaries) => _summaries = summaries;

    /// <summary>The documentation file of <paramref name="assembly"/> (NAME.xml beside NAME.dll).</summary>
    public static XmlDocs For(Assembly assembly)
    {
        string path = Path.ChangeExtension(assembly.Location, ".xml");
        if (!File.Exists(path))
            throw new M3TrainException($"{path}: not found; the config key reference is read from it (it is built with M3Train.Core.dll: rebuild, or publish without trimming documentation files).");
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (XmlException e)
        {
            throw new M3TrainException($"{path}: not a readable documentation file ({e.Message}).", e);
        }
    }

    /// <summary>Reads an XML documentation file's text.</summary>
    public static XmlDocs Parse(string xml)
    {
        var summaries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var member in XDocument.Parse(xml).Descendants("member"))
            if (member.Attribute("name")?.Value is { } name && member.Element("summary") is { } summary)
                summaries[name] = Plain(summary);
        return new XmlDocs(summaries);
    }

    /// <summary>The summary of a property, or null when it has none.</summary>
    public string? Summary(PropertyInfo property) =>
        _summaries.GetValueOrDefault($"P:{property.DeclaringType!.FullName!.Replace('+', '.')}.{property.Name}");

    static string Plain(XElement summary)
    {
        var text = new StringBuilder();
        foreach (var node in summary.DescendantNodes())
        {
            if (node is XText t && t.Parent is { } parent && parent.Name != "see") text.Append(t.Value);
            else if (node is XElement { Name.LocalName: "see" } see) text.Append(Reference(see));
            else if (node is XElement { Name.LocalName: "paramref" or "typeparamref" } param) text.Append(param.Attribute("name")?.Value);
        }
        return Whitespace().Replace(text.ToString(), " ").Trim();
    }

    static string Reference(XElement see)
    {
        if (see.Attribute("langword")?.Value is { } word) return word;
        if (!string.IsNullOrEmpty(see.Value)) return see.Value;
        string target = (see.Attribute("cref")?.Value ?? "").Split('(')[0];
        string name = target[(target.LastIndexOf('.') + 1)..];
        return target.StartsWith("P:", StringComparison.Ordinal) ? ConfigBinder.SnakeCase(name) : name;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
