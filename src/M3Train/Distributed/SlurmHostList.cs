using System.Globalization;

namespace M3Train.Distributed;

/// <summary>
/// Expands SLURM's compressed host lists (<c>gpu[01-03,07],cpu5</c>, <c>rack[1-2]-n[1-2]</c>) into host names,
/// in SLURM's order, without <c>scontrol</c> (compute nodes do not always have it). Zero padding follows the
/// range's first number, as SLURM writes it.
/// </summary>
public static class SlurmHostList
{
    public static IReadOnlyList<string> Expand(string list, string variable)
    {
        var hosts = new List<string>();
        foreach (string item in SplitTopLevel(list, variable))
            hosts.AddRange(ExpandItem(item, list, variable));
        if (hosts.Count == 0) throw Bad(list, variable, "it names no host");
        return hosts;
    }

    /// <summary>The first host of the list: where SLURM starts task 0 of a step.</summary>
    public static string First(string list, string variable) => Expand(list, variable)[0];

    static List<string> SplitTopLevel(string list, string variable)
    {
        var items = new List<string>();
        int depth = 0, start = 0;
        for (int i = 0; i < list.Length; i++)
        {
            switch (list[i])
            {
                case '[':
                    if (++depth > 1) throw Bad(list, variable, $"nested '[' at character {i + 1}");
                    break;
                case ']':
                    if (--depth < 0) throw Bad(list, variable, $"']' without '[' at character {i + 1}");
                    break;
                case ',' when depth == 0:
                    items.Add(list[start..i]);
                    start = i + 1;
                    break;
            }
        }
        if (depth != 0) throw Bad(list, variable, "a '[' is not closed");
        items.Add(list[start..]);
        foreach (string item in items)
            if (item.Trim().Length == 0) throw Bad(list, variable, "it has an empty entry");
        return items.Select(i => i.Trim()).ToList();
    }

    /// <summary>One entry, possibly with several bracket groups: the product of their ranges, leftmost slowest.</summary>
    static IEnumerable<string> ExpandItem(string item, string list, string variable)
    {
        var names = new List<string> { "" };
        int i = 0;
        while (i < item.Length)
        {
            int open = item.IndexOf('[', i);
            if (open < 0)
            {
                names = names.Select(n => n + item[i..]).ToList();
                break;
            }
            string literal = item[i..open];
            int close = item.IndexOf(']', open);
            var numbers = ExpandRanges(item[(open + 1)..close], list, variable);
            names = names.SelectMany(n => numbers.Select(x => n + literal + x)).ToList();
            i = close + 1;
        }
        return names;
    }

    static List<string> ExpandRanges(string ranges, string list, string variable)
    {
        var numbers = new List<string>();
        foreach (string part in ranges.Split(','))
        {
            string[] ends = part.Trim().Split('-');
            if (ends.Length > 2 || ends.Any(e => e.Length == 0 || !e.All(char.IsAsciiDigit)))
                throw Bad(list, variable, $"'[{ranges}]' holds '{part}', which is neither a number nor a range a-b");
            long first = long.Parse(ends[0]), last = ends.Length == 2 ? long.Parse(ends[1]) : first;
            if (last < first) throw Bad(list, variable, $"the range '{part}' ends before it starts");
            if (last - first >= 100_000) throw Bad(list, variable, $"the range '{part}' has more hosts than any cluster");
            int width = ends[0].Length;
            for (long n = first; n <= last; n++)
                numbers.Add(n.ToString("D" + width, CultureInfo.InvariantCulture));
        }
        return numbers;
    }

    static DistributedException Bad(string list, string variable, string why) =>
        new($"{variable}='{list}' is not a SLURM host list: {why}.");
}
