using M3Train.Model;
using M3Train.Runtime;
using M3Train.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace M3Train.Checkpoints;

/// <summary>
/// Saves an <see cref="M3Model"/> as a folder that HF transformers and FlagEmbedding load unchanged:
/// <c>config.json</c>, the encoder as <c>model.safetensors</c> (never <c>pytorch_model.bin</c>: PyBridge's
/// pickles of a full model load in transformers as NaNs), <c>colbert_linear.pt</c> and <c>sparse_linear.pt</c>
/// as PyTorch pickles, the tokenizer files (<see cref="TokenizerFiles"/>), and what sentence-transformers needs to load the
/// dense model plus a model card (<see cref="SentenceTransformersFiles"/>). The folder is written beside the target under a temporary
/// name and renamed into place, so a crash never leaves a half-written checkpoint; an existing folder is
/// replaced only after the new one is complete.
/// </summary>
public static class M3CheckpointWriter
{
    /// <param name="model">The model to save (any device; fp32 master weights are written).</param>
    /// <param name="directory">Target folder; replaced if it exists.</param>
    /// <param name="layout">Key names to write (those of the loaded checkpoint); null for HF <c>XLMRobertaModel</c> keys.</param>
    /// <param name="tokenizerDirectory">Folder to copy the tokenizer files from, if any.</param>
    public static void Save(M3Model model, string directory, CheckpointLayout? layout = null, string? tokenizerDirectory = null)
    {
        string target = Path.GetFullPath(directory.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        string parent = Path.GetDirectoryName(target) ?? throw new M3TrainException($"{directory}: cannot save into a file-system root.");
        System.IO.Directory.CreateDirectory(parent);
        string name = Path.GetFileName(target);
        string staging = Path.Combine(parent, $".{name}.saving-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(staging);
        try
        {
            using (var owned = layout is null ? CheckpointLayout.For(model) : null)
                WriteFiles(model, staging, layout ?? owned!, tokenizerDirectory);
            SentenceTransformersFiles.Write(staging, model.Config, target, tokenizerDirectory);
            Replace(target, staging);
        }
        catch
        {
            if (System.IO.Directory.Exists(staging)) System.IO.Directory.Delete(staging, recursive: true);
            throw;
        }
    }

    static void WriteFiles(M3Model model, string folder, CheckpointLayout layout, string? tokenizerDirectory)
    {
        model.Config.Save(Path.Combine(folder, M3Keys.ConfigFile));
        SafetensorsFile.Write(Path.Combine(folder, M3Keys.SafetensorsFile), EncoderTensors(model, layout));
        PickleHead(model.ColbertHead, Path.Combine(folder, M3Keys.ColbertFile));
        PickleHead(model.SparseHead, Path.Combine(folder, M3Keys.SparseFile));
        if (tokenizerDirectory is not null) TokenizerFiles.Copy(tokenizerDirectory, folder);
    }

    /// <summary>The layout's keys in order, each with the model tensor it names; model parameters the layout lacks follow.</summary>
    static List<KeyValuePair<string, Tensor>> EncoderTensors(M3Model model, CheckpointLayout layout)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var written = new HashSet<string>();
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (string key in layout.EncoderKeys)
        {
            if (layout.Passthrough.TryGetValue(key, out var kept))
            {
                result.Add(new(key, kept));
                continue;
            }
            string parameterName = ParameterName(key, layout.KeyPrefix);
            if (!parameters.TryGetValue(parameterName, out var tensor))
                throw new InvalidOperationException($"The checkpoint layout names '{key}', which this model does not have.");
            result.Add(new(key, tensor));
            written.Add(parameterName);
        }
        foreach (var (parameterName, tensor) in parameters)
        {
            bool isEncoder = parameterName.StartsWith(M3Keys.Encoder, StringComparison.Ordinal);
            if (written.Contains(parameterName) || !(isEncoder || parameterName.StartsWith(M3Keys.LmHead, StringComparison.Ordinal))) continue;
            result.Add(new(isEncoder ? layout.KeyPrefix + parameterName[M3Keys.Encoder.Length..] : parameterName, tensor));
        }
        return result;
    }

    static string ParameterName(string key, string prefix) => key switch
    {
        M3Keys.LmDecoderWeight => M3Keys.WordEmbeddings,
        M3Keys.LmDecoderBias => M3Keys.LmBias,
        _ when key.StartsWith(M3Keys.LmHead, StringComparison.Ordinal) => key,
        _ when prefix.Length > 0 && key.StartsWith(prefix, StringComparison.Ordinal) => M3Keys.Encoder + key[prefix.Length..],
        _ => M3Keys.Encoder + key,
    };

    /// <summary>
    /// A head's state dict as <c>torch.save</c> would write it. PyBridge corrupts views that do not start
    /// at storage offset 0 and refuses non-contiguous tensors, so each tensor is a fresh contiguous CPU clone.
    /// </summary>
    static void PickleHead(nn.Module head, string path)
    {
        var state = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, parameter) in head.named_parameters())
                state[name] = parameter.detach().cpu().contiguous().clone();
            using var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write);
            PyTorchPickler.PickleStateDict(stream, state);
        }
        finally
        {
            foreach (var t in state.Values) t.Dispose();
        }
    }

    /// <summary>Moves the finished staging folder to the target, replacing an existing folder only once the new one is in place.</summary>
    static void Replace(string target, string staging)
    {
        if (File.Exists(target)) throw new M3TrainException($"{target}: exists and is a file, not a checkpoint folder.");
        AtomicFolder.Replace(staging, target);
    }
}
