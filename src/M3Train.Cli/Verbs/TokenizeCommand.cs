using System.CommandLine;
using System.Text;
using System.Text.Unicode;
using M3Train.Data;
using M3Train.Text;

namespace M3Train.Cli.Verbs;

/// <summary><c>m3train tokenize</c>: XLM-R token ids of each input line, as JSON lines.</summary>
public static class TokenizeCommand
{
    const int LinesPerBatch = 4096;

    static readonly Option<DirectoryInfo> ModelOption = CommonOptions.Model("Checkpoint or tokenizer folder holding sentencepiece.bpe.model.");

    static readonly Option<int?> MaxLengthOption = new("--max-length")
    {
        Description = "Truncate to this many tokens including <s> and </s> (HF truncation); default: no truncation.",
    };

    static readonly Option<FileInfo> InputOption = PathOptions.Input("--input", "UTF-8 text file, one text a line (default: standard input).", required: false);

    public static Command Create()
    {
        var command = new Command("tokenize", "Print {\"input_ids\":[...]} for each UTF-8 input line.")
        {
            ModelOption, MaxLengthOption, InputOption,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(MaxLengthOption) is < 2)
                result.AddError("--max-length must be at least 2 (room for <s> and </s>).");
        });
        command.SetAction(parseResult => Run(
            parseResult.GetValue(ModelOption)!,
            parseResult.GetValue(MaxLengthOption) ?? int.MaxValue,
            parseResult.GetValue(InputOption)));
        return command;
    }

    static int Run(DirectoryInfo model, int maxLength, FileInfo? input)
    {
        XlmrTokenizer tokenizer = LoadTokenizer(model.FullName);
        string source = input?.FullName ?? "stdin";
        using var reader = new Utf8LineReader(input is null ? Console.OpenStandardInput() : input.OpenRead());
        using var writer = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), bufferSize: 1 << 16);
        var lines = new List<string>(LinesPerBatch);
        bool more = true;
        while (more)
        {
            lines.Clear();
            while (lines.Count < LinesPerBatch && (more = reader.TryReadLine(out var line)))
            {
                if (!Utf8.IsValid(line))
                    throw new M3TrainException($"{source}:{reader.LineNumber}: invalid UTF-8");
                lines.Add(Encoding.UTF8.GetString(line));
            }
            foreach (int[] ids in tokenizer.EncodeBatch(lines, maxLength))
                WriteJsonLine(writer, ids);
        }
        return 0;
    }

    static XlmrTokenizer LoadTokenizer(string dir)
    {
        try
        {
            return XlmrTokenizer.FromFolder(dir);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
        {
            throw new M3TrainException(e.Message, e);
        }
    }

    static void WriteJsonLine(StreamWriter writer, int[] ids)
    {
        writer.Write("{\"input_ids\":[");
        for (int i = 0; i < ids.Length; i++)
        {
            if (i > 0) writer.Write(',');
            writer.Write(ids[i]);
        }
        writer.Write("]}\n");
    }
}
