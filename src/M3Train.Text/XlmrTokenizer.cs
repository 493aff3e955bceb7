using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace M3Train.Text;

/// <summary>
/// The XLM-RoBERTa tokenizer: a SentencePiece unigram model (<c>sentencepiece.bpe.model</c>) with
/// fairseq ids, as HF's <c>XLMRobertaTokenizer</c> produces them.
/// </summary>
/// <remarks>
/// Id layout: <c>&lt;s&gt;</c>=0, <c>&lt;pad&gt;</c>=1, <c>&lt;/s&gt;</c>=2, <c>&lt;unk&gt;</c>=3; SentencePiece piece
/// k ≥ 3 becomes k+1, its own unk/bos/eos (0, 1, 2) become 3, 0, 2; <c>&lt;mask&gt;</c> = pieces + 1.
/// Microsoft.ML.Tokenizers emits one unk per unknown character, SentencePiece one per run, so runs are
/// merged here. Text is taken literally: "&lt;s&gt;" in a text is encoded as characters, as
/// SentencePiece does (HF's fast tokenizer would turn it into the special id).
/// Thread-safe: the instance is immutable after construction.
/// </remarks>
public sealed class XlmrTokenizer
{
    public const int BosId = 0, PadId = 1, EosId = 2, UnkId = 3;
    public const string ModelFileName = "sentencepiece.bpe.model";
    const int SpmUnkId = 0;
    const long MaxModelBytes = 256L << 20;

    readonly SentencePieceTokenizer _spm;
    readonly int[] _fairseqIdOfSpmId;   // [pieces]
    readonly string[] _pieceOfSpmId;    // [pieces]

    XlmrTokenizer(SentencePieceTokenizer spm, string fingerprint)
    {
        _spm = spm;
        Fingerprint = fingerprint;
        int pieces = spm.Vocabulary.Count;
        _pieceOfSpmId = new string[pieces];
        foreach (var (piece, id) in spm.Vocabulary)
            _pieceOfSpmId[id] = piece;
        _fairseqIdOfSpmId = new int[pieces];
        for (int id = 0; id < pieces; id++)
            _fairseqIdOfSpmId[id] = FairseqId(id, spm);
        MaskId = pieces + 1;
        VocabSize = pieces + 2;
    }

    /// <summary>Id of <c>&lt;mask&gt;</c>: the number of SentencePiece pieces + 1 (250001 for XLM-R).</summary>
    public int MaskId { get; }

    /// <summary>Embedding rows the model needs: pieces + 2 (250002 for XLM-R).</summary>
    public int VocabSize { get; }

    /// <summary>SHA-256 (hex) of the model file: identifies the tokenizer in caches of token counts.</summary>
    public string Fingerprint { get; }

    /// <summary>Loads <c>dir/sentencepiece.bpe.model</c> (a checkpoint folder).</summary>
    /// <exception cref="FileNotFoundException">The folder has no model file.</exception>
    /// <exception cref="InvalidDataException">The file is not a SentencePiece model.</exception>
    public static XlmrTokenizer FromFolder(string dir)
    {
        string path = Path.Combine(dir, ModelFileName);
        if (!File.Exists(path))
            throw new FileNotFoundException($"{path}: tokenizer model not found (a checkpoint folder must hold {ModelFileName})", path);
        return FromFile(path);
    }

    /// <summary>Loads a SentencePiece model file.</summary>
    /// <exception cref="InvalidDataException">The file is not an XLM-R SentencePiece model (the message names it).</exception>
    public static XlmrTokenizer FromFile(string path)
    {
        byte[] bytes;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxModelBytes)
                throw new InvalidDataException($"{path}: {length} bytes; a SentencePiece model is a few megabytes (at most {MaxModelBytes >> 20} MiB is read)");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{path}: cannot read ({e.Message})", e);
        }
        SentencePieceTokenizer spm;
        try
        {
            spm = SentencePieceTokenizer.Create(new MemoryStream(bytes, writable: false), addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path}: not a SentencePiece model ({e.Message})", e);
        }
        if (spm.Vocabulary.Count < 3 || spm.UnknownId != SpmUnkId || spm.BeginningOfSentenceId != 1 || spm.EndOfSentenceId != 2)
            throw new InvalidDataException($"{path}: not an XLM-R SentencePiece model (expected unk=0, bos=1, eos=2; found unk={spm.UnknownId}, bos={spm.BeginningOfSentenceId}, eos={spm.EndOfSentenceId})");
        if (spm.Vocabulary.Values.Any(id => id < 0 || id >= spm.Vocabulary.Count))
            throw new InvalidDataException($"{path}: its pieces are not numbered 0..{spm.Vocabulary.Count - 1}; the model is damaged");
        return new XlmrTokenizer(spm, Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    /// <summary><c>&lt;s&gt;</c> + pieces + <c>&lt;/s&gt;</c>; truncation as HF: <c>&lt;s&gt;</c>, the first maxLength-2 pieces, <c>&lt;/s&gt;</c>.</summary>
    public int[] Encode(string text, int maxLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (maxLength < 2)
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max length must leave room for <s> and </s> (at least 2)");
        IReadOnlyList<int> spmIds = _spm.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
        int pieces = MergedLength(spmIds);
        int kept = Math.Min(pieces, maxLength - 2);
        var ids = new int[kept + 2];
        ids[0] = BosId;
        int n = 1;
        bool previousUnk = false;
        for (int i = 0; i < spmIds.Count && n <= kept; i++)
        {
            int id = _fairseqIdOfSpmId[spmIds[i]];
            bool unk = id == UnkId;
            if (unk && previousUnk) continue;
            previousUnk = unk;
            ids[n++] = id;
        }
        ids[n] = EosId;
        return ids;
    }

    /// <summary>Encodes every text (in parallel); result i belongs to text i.</summary>
    public int[][] EncodeBatch(IReadOnlyList<string> texts, int maxLength = int.MaxValue)
    {
        var result = new int[texts.Count][];
        if (texts.Count < 8)
        {
            for (int i = 0; i < texts.Count; i++) result[i] = Encode(texts[i], maxLength);
            return result;
        }
        Parallel.For(0, texts.Count, i => result[i] = Encode(texts[i], maxLength));
        return result;
    }

    /// <summary>Length of the encoding with <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>, without truncation.</summary>
    public int CountTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return MergedLength(_spm.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false)) + 2;
    }

    /// <summary>Encodes and right-pads with <see cref="PadId"/> to the longest (rounded up to a multiple of <paramref name="padToMultipleOf"/>).</summary>
    public EncodedBatch EncodePadded(IReadOnlyList<string> texts, int maxLength = int.MaxValue, int padToMultipleOf = 1) =>
        EncodedBatch.Pad(EncodeBatch(texts, maxLength), padToMultipleOf);

    /// <summary>The piece (or special token) of an id.</summary>
    public string IdToToken(int id) => id switch
    {
        BosId => "<s>",
        PadId => "<pad>",
        EosId => "</s>",
        UnkId => "<unk>",
        _ when id == MaskId => "<mask>",
        _ when id > UnkId && id < MaskId => _pieceOfSpmId[id - 1],
        _ => throw new ArgumentOutOfRangeException(nameof(id), id, $"not an id of this tokenizer (0..{VocabSize - 1})"),
    };

    /// <summary>The text of the pieces, special tokens (including <c>&lt;unk&gt;</c>) skipped, as HF's <c>decode(skip_special_tokens=True)</c>.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        foreach (int id in ids)
        {
            if (id <= UnkId || id == MaskId) continue;
            text.Append(IdToToken(id));
        }
        text.Replace('\u2581', ' ');
        return text.Length > 0 && text[0] == ' ' ? text.ToString(1, text.Length - 1) : text.ToString();
    }

    int MergedLength(IReadOnlyList<int> spmIds)
    {
        int n = 0;
        bool previousUnk = false;
        for (int i = 0; i < spmIds.Count; i++)
        {
            bool unk = spmIds[i] == SpmUnkId;
            if (!(unk && previousUnk)) n++;
            previousUnk = unk;
        }
        return n;
    }

    static int FairseqId(int spmId, SentencePieceTokenizer spm)
    {
        if (spmId == spm.UnknownId) return UnkId;
        if (spmId == spm.BeginningOfSentenceId) return BosId;
        if (spmId == spm.EndOfSentenceId) return EosId;
        return spmId + 1;
    }
}
