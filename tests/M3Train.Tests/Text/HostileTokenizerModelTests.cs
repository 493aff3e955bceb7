using M3Train.Text;
using Xunit;

namespace M3Train.Tests.Text;

/// <summary>A damaged or absurd SentencePiece model is an InvalidDataException naming the file, which callers turn into M3TrainException.</summary>
public sealed class HostileTokenizerModelTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("m3-spm-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    static string Shipped => Path.Combine(Data.DataTestFolder.RepoRoot, "data", "models", "tiny-m3", XlmrTokenizer.ModelFileName);

    [Fact]
    public void AModelFarLargerThanAnyRealOneIsRefusedWithoutBeingRead()
    {
        string path = Path.Combine(_root, XlmrTokenizer.ModelFileName);
        using (var file = File.Create(path)) file.SetLength(300L << 20);   // sparse: nothing is written
        var error = Assert.Throws<InvalidDataException>(() => XlmrTokenizer.FromFile(path));
        Assert.StartsWith($"{path}: 314572800 bytes", error.Message);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(100_000)]
    public void ATruncatedModelIsAnErrorNamingTheFile(int length)
    {
        string path = Path.Combine(_root, XlmrTokenizer.ModelFileName);
        File.WriteAllBytes(path, File.ReadAllBytes(Shipped)[..length]);
        var error = Assert.Throws<InvalidDataException>(() => XlmrTokenizer.FromFile(path));
        Assert.StartsWith(path, error.Message);
    }

    [Fact]
    public void AFolderInPlaceOfTheModelIsAnErrorNamingIt()
    {
        string path = Path.Combine(_root, "folder");
        Directory.CreateDirectory(path);
        var error = Assert.Throws<InvalidDataException>(() => XlmrTokenizer.FromFile(path));
        Assert.StartsWith(path, error.Message);
    }
}
