using System.Text;

namespace M3Train.Config;

/// <summary>
/// Every key of a config record, with the type the binder accepts, the default and the doc comment: the same walk
/// over the same properties that <see cref="ConfigBinder"/> binds and <see cref="ConfigWriter"/> writes, so the
/// reference cannot list a key the binder refuses or miss one it reads.
/// </summary>
public static class ConfigReference
{
    /// <summary>
    /// The keys of <typeparamref name="T"/> in declaration order, sections expanded, documented from <paramref name="docs"/>;
    /// a list of sections is listed itself and then with its entries' keys as <c>key[].entry_key</c>.
    /// </summary>
    public static IReadOnlyList<ConfigKeyDoc> For<T>(XmlDocs docs) where T : new()
    {
        var keys = new List<ConfigKeyDoc>();
        Walk(typeof(T), new T(), "", docs, keys);
        return keys;
    }

    static void Walk(Type section, object defaults, string prefix, XmlDocs docs, List<ConfigKeyDoc> keys)
    {
        foreach (var property in ConfigBinder.Keys(section))
        {
            string key = prefix + ConfigBinder.KeyOf(property);
            object? value = property.GetValue(defaults);
            if (ConfigBinder.IsSection(property.PropertyType) && value is not null)
            {
                Walk(property.PropertyType, value, key + ".", docs, keys);
                continue;
            }
            keys.Add(new ConfigKeyDoc(key, Type(property.PropertyType), Default(value), docs.Summary(property) ?? ""));
            // A list of sections (data.dataset_overrides, stages): each entry's keys, as KEY[].entry_key.
            if (ConfigBinder.ListElement(property.PropertyType) is { } element && ConfigBinder.IsSection(element))
                Walk(element, Activator.CreateInstance(element)!, key + "[].", docs, keys);
        }
    }

    static string Type(Type type) =>
        Nullable.GetUnderlyingType(type) is not null ? $"{ConfigBinder.Describe(type)} or null" : ConfigBinder.Describe(type);

    /// <summary>The default as JSON (strings quoted), which is also what <c>--set key=VALUE</c> takes.</summary>
    static string Default(object? value) => ConfigWriter.ToJson(value)?.ToJsonString() ?? "null";

    /// <summary>The reference as text: per key a line <c>key (type, default X)</c> and the doc indented below it.</summary>
    public static string ToText(IEnumerable<ConfigKeyDoc> keys)
    {
        var text = new StringBuilder();
        foreach (var k in keys)
        {
            text.Append(k.Key).Append(" (").Append(k.Type).Append(", default ").Append(k.Default).Append(")\n");
            if (k.Doc.Length > 0) text.Append("    ").Append(k.Doc).Append('\n');
        }
        return text.ToString();
    }
}
