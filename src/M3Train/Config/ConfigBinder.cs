using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Reflection;

namespace M3Train.Config;

/// <summary>
/// Binds a <see cref="ConfigNode"/> tree onto config records: keys are the properties' names in snake_case
/// (<c>QueryMaxLen</c> ↔ <c>query_max_len</c>), keys not given keep the record's defaults, and an unknown key,
/// a wrong type or a value outside a <see cref="RangeAttribute"/> is a <see cref="ConfigException"/> naming
/// the file, line and key path; an unknown key that is an HF or FlagEmbedding argument name says which key it is here
/// (<see cref="ForeignKeyNames"/>).
/// </summary>
public static class ConfigBinder
{
    public static T Bind<T>(ConfigNode root, string source) where T : new() =>
        (T)Bind(root, typeof(T), new T(), source, "")!;

    /// <summary>The key a property is read from.</summary>
    public static string KeyOf(PropertyInfo p) => p.GetCustomAttribute<ConfigKeyAttribute>()?.Key ?? SnakeCase(p.Name);

    public static string SnakeCase(string name)
    {
        var sb = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool boundary = i > 0 && char.IsUpper(c) &&
                            (char.IsLower(name[i - 1]) || char.IsDigit(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1])));
            if (boundary) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>The settable properties of a config section, in declaration order.</summary>
    public static IEnumerable<PropertyInfo> Keys(Type section) =>
        section.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0)
            .OrderBy(p => p.MetadataToken);

    static object? Bind(ConfigNode node, Type type, object? existing, string source, string path, bool nullableReference = false)
    {
        string where = node.Origin ?? source;
        Type? nullableOf = Nullable.GetUnderlyingType(type);
        if (node is ConfigNode.Scalar { Quoted: false, Value: null or "~" or "null" or "Null" or "NULL" or "" })
        {
            if (nullableOf != null || nullableReference) return null;
            throw new ConfigException(where, node.Line, path, $"must not be null (expected {Describe(type)}).");
        }
        type = nullableOf ?? type;

        if (IsScalarType(type))
        {
            if (node is not ConfigNode.Scalar s)
                throw new ConfigException(where, node.Line, path, $"expected {Describe(type)}, got a {(node is ConfigNode.Map ? "mapping" : "list")}.");
            return ParseScalar(s, type, where, path);
        }
        if (ListElement(type) is { } element)
        {
            if (node is not ConfigNode.Seq seq)
                throw new ConfigException(where, node.Line, path, $"expected a list of {Describe(element)}.");
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            for (int i = 0; i < seq.Items.Count; i++)
                list.Add(Bind(seq.Items[i], element, element.IsValueType || element == typeof(string) ? null : New(element), source, $"{path}[{i}]"));
            if (type.IsArray)
            {
                var array = Array.CreateInstance(element, list.Count);
                list.CopyTo(array, 0);
                return array;
            }
            return list;
        }
        if (DictionaryValue(type) is { } valueType)
        {
            if (node is not ConfigNode.Map map)
                throw new ConfigException(where, node.Line, path, $"expected a mapping of names to {Describe(valueType)}.");
            var dict = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(typeof(string), valueType))!;
            foreach (var (k, v) in map.Entries)
                dict[k] = Bind(v, valueType, valueType.IsValueType || valueType == typeof(string) ? null : New(valueType), source, Join(path, k));
            return dict;
        }
        return BindSection(node, type, existing, source, path);
    }

    static object BindSection(ConfigNode node, Type type, object? existing, string source, string path)
    {
        string where = node.Origin ?? source;
        if (node is not ConfigNode.Map map)
            throw new ConfigException(where, node.Line, path, "expected a mapping (a section with keys).");
        object target = existing != null ? Clone(existing) : New(type);
        var props = Keys(type).ToDictionary(KeyOf, StringComparer.Ordinal);
        foreach (var (key, child) in map.Entries)
        {
            string keyPath = Join(path, key);
            if (!props.TryGetValue(key, out var prop))
            {
                if (ForeignKeyNames.Hint(key) is { } hint)
                    throw new ConfigException(child.Origin ?? source, child.Line, keyPath, $"unknown key; {hint}.");
                string? near = Nearest(key, props.Keys);
                throw new ConfigException(child.Origin ?? source, child.Line, keyPath,
                    $"unknown key{(near != null ? $" (did you mean '{Join(path, near)}'?)" : "")}. Known keys here: {string.Join(", ", props.Keys)}.");
            }
            bool nullable = !prop.PropertyType.IsValueType && Nullability.Create(prop).WriteState == NullabilityState.Nullable;
            object? value = Bind(child, prop.PropertyType, prop.GetValue(target), source, keyPath, nullable);
            CheckRange(prop, value, child, source, keyPath);
            prop.SetValue(target, value);
        }
        if (target is IConfigValidatable v)
            foreach (var (key, message) in v.Validate())
            {
                // The deepest node the key reaches: a value given by --set inside a section of the file is blamed on the --set.
                var at = key.Length == 0 ? node : node.Follow(key.Split('.')).Node;
                throw new ConfigException(at.Origin ?? source, at.Line, Join(path, key), message);
            }
        return target;
    }

    static void CheckRange(PropertyInfo prop, object? value, ConfigNode node, string source, string path)
    {
        var range = prop.GetCustomAttribute<RangeAttribute>();
        if (range == null || value == null) return;
        double x = Convert.ToDouble(value, CultureInfo.InvariantCulture);
        double min = Convert.ToDouble(range.Minimum, CultureInfo.InvariantCulture);
        double max = Convert.ToDouble(range.Maximum, CultureInfo.InvariantCulture);
        bool below = range.MinimumIsExclusive ? x <= min : x < min;
        bool above = range.MaximumIsExclusive ? x >= max : x > max;
        if (below || above)
            throw new ConfigException(node.Origin ?? source, node.Line, path,
                $"{value.ToString()?.ToLowerInvariant()} is out of range: must be in {(range.MinimumIsExclusive ? "(" : "[")}{range.Minimum}, {range.Maximum}{(range.MaximumIsExclusive ? ")" : "]")}.");
    }

    static object ParseScalar(ConfigNode.Scalar s, Type type, string where, string path)
    {
        string text = s.Value ?? "";
        string Wrong() => $"expected {Describe(type)}, got '{text}'.";
        if (type == typeof(string)) return text;
        if (s.Quoted && type != typeof(string) && !type.IsEnum) throw new ConfigException(where, s.Line, path, Wrong());
        var inv = CultureInfo.InvariantCulture;
        object? result = null;
        if (type == typeof(bool)) result = text.ToLowerInvariant() switch { "true" or "yes" or "on" => true, "false" or "no" or "off" => false, _ => null };
        else if (type == typeof(int) && int.TryParse(text, NumberStyles.Integer, inv, out int i)) result = i;
        else if (type == typeof(long) && long.TryParse(text, NumberStyles.Integer, inv, out long l)) result = l;
        else if (type == typeof(double) && double.TryParse(text, NumberStyles.Float, inv, out double d)) result = d;
        else if (type == typeof(float) && float.TryParse(text, NumberStyles.Float, inv, out float f)) result = f;
        else if (type.IsEnum) result = ParseEnum(type, text);
        return result ?? throw new ConfigException(where, s.Line, path, Wrong());
    }

    static object? ParseEnum(Type type, string text)
    {
        string norm = text.Replace("_", "").Replace("-", "");
        foreach (string name in Enum.GetNames(type))
            if (string.Equals(name, norm, StringComparison.OrdinalIgnoreCase))
                return Enum.Parse(type, name);
        return null;
    }

    public static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return "a string";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(int) || type == typeof(long)) return "an integer";
        if (type == typeof(float) || type == typeof(double)) return "a number";
        if (type.IsEnum) return "one of " + string.Join(", ", Enum.GetNames(type).Select(SnakeCase));
        if (ListElement(type) is { } e) return $"a list of {Describe(e)}";
        return "a mapping";
    }

    static bool IsScalarType(Type t) => t.IsPrimitive || t == typeof(string) || t.IsEnum || t == typeof(decimal);

    /// <summary>Whether values of <paramref name="type"/> bind as a section of keys (not a scalar, list or mapping).</summary>
    public static bool IsSection(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return !IsScalarType(type) && ListElement(type) is null && DictionaryValue(type) is null;
    }

    internal static Type? ListElement(Type t)
    {
        if (t == typeof(string)) return null;
        if (t.IsArray) return t.GetElementType();
        if (t.IsGenericType)
        {
            var def = t.GetGenericTypeDefinition();
            if (def == typeof(List<>) || def == typeof(IReadOnlyList<>) || def == typeof(IList<>) || def == typeof(IEnumerable<>) || def == typeof(IReadOnlyCollection<>))
                return t.GetGenericArguments()[0];
        }
        return null;
    }

    internal static Type? DictionaryValue(Type t)
    {
        if (!t.IsGenericType) return null;
        var def = t.GetGenericTypeDefinition();
        if ((def == typeof(Dictionary<,>) || def == typeof(IReadOnlyDictionary<,>) || def == typeof(IDictionary<,>)) && t.GetGenericArguments()[0] == typeof(string))
            return t.GetGenericArguments()[1];
        return null;
    }

    static object New(Type t) =>
        Activator.CreateInstance(t) ?? throw new InvalidOperationException($"{t.Name} needs a parameterless constructor to be a config section.");

    static NullabilityInfoContext Nullability => new();

    static readonly MethodInfo MemberwiseCloneMethod =
        typeof(object).GetMethod("MemberwiseClone", BindingFlags.Instance | BindingFlags.NonPublic)!;

    static object Clone(object o) => MemberwiseCloneMethod.Invoke(o, null)!;

    static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    static string? Nearest(string key, IEnumerable<string> known)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string k in known)
        {
            int d = Levenshtein(key, k);
            if (d < bestDistance) (best, bestDistance) = (k, d);
        }
        return bestDistance <= Math.Max(2, key.Length / 3) ? best : null;
    }

    static int Levenshtein(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }
        return prev[b.Length];
    }
}
