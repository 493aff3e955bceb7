using System.Text;
using M3Train.Build;
using Xunit;

namespace M3Train.Tests.Build;

public class ElfVersionPatcherTests
{
    /// <summary>
    /// A minimal ELF64 file with a string table and a .gnu.version_r section needing
    /// libstdc++.so.6 (GLIBCXX_3.4.32, GLIBCXX_3.4.30) and libc.so.6 (GLIBC_2.2.5).
    /// Returns the file and the offsets of the three vna_flags fields.
    /// </summary>
    static (byte[] Elf, int[] FlagOffsets) SyntheticElf()
    {
        string[] names = ["libstdc++.so.6", "GLIBCXX_3.4.32", "GLIBCXX_3.4.30", "libc.so.6", "GLIBC_2.2.5"];
        var strtab = new List<byte> { 0 };
        var at = new Dictionary<string, int>();
        foreach (var n in names) { at[n] = strtab.Count; strtab.AddRange(Encoding.ASCII.GetBytes(n)); strtab.Add(0); }

        const int strOff = 64, verOff = 256, shOff = 512, shSize = 64;
        var elf = new byte[shOff + 3 * shSize];
        "\u007fELF"u8.ToArray().CopyTo(elf, 0);
        elf[4] = 2; elf[5] = 1; elf[6] = 1;
        Put64(elf, 0x28, shOff); Put16(elf, 0x3A, shSize); Put16(elf, 0x3C, 3); Put16(elf, 0x3E, 1);
        strtab.ToArray().CopyTo(elf, strOff);

        // Verneed 1 (libstdc++, two aux) at verOff, its aux at +16 and +32; Verneed 2 (libc) at +48, aux at +64.
        PutVerneed(elf, verOff, count: 2, file: at["libstdc++.so.6"], next: 48);
        PutVernaux(elf, verOff + 16, name: at["GLIBCXX_3.4.32"], other: 2, next: 16);
        PutVernaux(elf, verOff + 32, name: at["GLIBCXX_3.4.30"], other: 3, next: 0);
        PutVerneed(elf, verOff + 48, count: 1, file: at["libc.so.6"], next: 0);
        PutVernaux(elf, verOff + 64, name: at["GLIBC_2.2.5"], other: 4, next: 0);

        // Section 1: string table; section 2: SHT_GNU_verneed linked to it with 2 entries.
        Put32(elf, shOff + shSize + 4, 3); Put64(elf, shOff + shSize + 24, strOff); Put64(elf, shOff + shSize + 32, strtab.Count);
        Put32(elf, shOff + 2 * shSize + 4, 0x6ffffffe); Put64(elf, shOff + 2 * shSize + 24, verOff); Put64(elf, shOff + 2 * shSize + 32, 80);
        Put32(elf, shOff + 2 * shSize + 40, 1); Put32(elf, shOff + 2 * shSize + 44, 2);
        return (elf, [verOff + 16 + 4, verOff + 32 + 4, verOff + 64 + 4]);
    }

    static void PutVerneed(byte[] b, int o, int count, int file, int next)
    {
        Put16(b, o, 1); Put16(b, o + 2, count); Put32(b, o + 4, file); Put32(b, o + 8, 16); Put32(b, o + 12, next);
    }

    static void PutVernaux(byte[] b, int o, int name, int other, int next)
    {
        Put32(b, o, 0x1234567); Put16(b, o + 4, 0); Put16(b, o + 6, other); Put32(b, o + 8, name); Put32(b, o + 12, next);
    }

    static void Put16(byte[] b, int o, int v) => BitConverter.GetBytes((ushort)v).CopyTo(b, o);
    static void Put32(byte[] b, int o, long v) => BitConverter.GetBytes((uint)v).CopyTo(b, o);
    static void Put64(byte[] b, int o, long v) => BitConverter.GetBytes((ulong)v).CopyTo(b, o);

    [Fact]
    public void SetsTheWeakFlagOnlyOnTheNamedVersion()
    {
        var (elf, flags) = SyntheticElf();
        var original = (byte[])elf.Clone();

        Assert.Equal(ElfPatchResult.Patched, ElfVersionPatcher.MarkVersionWeak(elf, "GLIBCXX_3.4.32"));

        var changed = Enumerable.Range(0, elf.Length).Where(i => elf[i] != original[i]).ToArray();
        Assert.Equal([flags[0]], changed);
        Assert.Equal(2, BitConverter.ToUInt16(elf, flags[0]));
        Assert.Equal(0, BitConverter.ToUInt16(elf, flags[1]));
        Assert.Equal(0, BitConverter.ToUInt16(elf, flags[2]));
        Assert.Equal((ushort)2, ElfVersionPatcher.VersionFlags(elf, "GLIBCXX_3.4.32"));
        Assert.Equal((ushort)0, ElfVersionPatcher.VersionFlags(elf, "GLIBC_2.2.5"));
    }

    [Fact]
    public void IsIdempotent()
    {
        var (elf, _) = SyntheticElf();
        ElfVersionPatcher.MarkVersionWeak(elf, "GLIBCXX_3.4.32");
        var once = (byte[])elf.Clone();
        Assert.Equal(ElfPatchResult.AlreadyPatched, ElfVersionPatcher.MarkVersionWeak(elf, "GLIBCXX_3.4.32"));
        Assert.Equal(once, elf);
    }

    [Fact]
    public void LeavesFilesWithoutTheVersionOrNotElfUntouched()
    {
        var (elf, _) = SyntheticElf();
        var original = (byte[])elf.Clone();
        Assert.Equal(ElfPatchResult.VersionNotRequired, ElfVersionPatcher.MarkVersionWeak(elf, "GLIBCXX_9.9.9"));
        Assert.Equal(original, elf);

        var junk = Encoding.ASCII.GetBytes(new string('x', 128));
        Assert.Equal(ElfPatchResult.NotElf64, ElfVersionPatcher.MarkVersionWeak(junk, "GLIBCXX_3.4.32"));
    }

    [Fact]
    public void PatchesAFileOnDiskInPlace()
    {
        var (elf, flags) = SyntheticElf();
        string path = Path.Combine(Path.GetTempPath(), $"m3-elf-{Guid.NewGuid():N}.so");
        try
        {
            File.WriteAllBytes(path, elf);
            Assert.Equal(ElfPatchResult.Patched, ElfVersionPatcher.MarkVersionWeak(path, "GLIBCXX_3.4.32"));
            Assert.Equal(ElfPatchResult.AlreadyPatched, ElfVersionPatcher.MarkVersionWeak(path, "GLIBCXX_3.4.32"));
            Assert.Equal(2, BitConverter.ToUInt16(File.ReadAllBytes(path), flags[0]));
        }
        finally { File.Delete(path); }
    }
}
