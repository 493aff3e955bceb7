// Marks one symbol-version requirement of an ELF64 shared library as weak (VER_FLG_WEAK), so that
// the dynamic loader only warns when the version is missing. TorchSharp 0.107's libLibTorchSharp.so
// requires GLIBCXX_3.4.32 for a symbol it only references, which stops it loading on Debian 12 and
// Ubuntu 22.04 (GLIBCXX up to 3.4.30). Compiled twice: into the build as an inline MSBuild task
// (see TorchNativePatch.targets) and into the tests, which define M3TRAIN_TESTS.
using System;
using System.IO;
using System.Text;

namespace M3Train.Build
{
    public enum ElfPatchResult { Patched, AlreadyPatched, VersionNotRequired, NotElf64 }

    public static class ElfVersionPatcher
    {
        const uint ShtGnuVerneed = 0x6ffffffe;
        const ushort VerFlgWeak = 0x2;

        public static ElfPatchResult MarkVersionWeak(string path, string versionName)
        {
            byte[] elf = File.ReadAllBytes(path);
            ElfPatchResult result = MarkVersionWeak(elf, versionName);
            if (result == ElfPatchResult.Patched)
            {
                // A new file renamed over the old one, as TorchSharpLifetimePatcher does: never writes through a hard
                // link into a package cache.
                string tmp = path + ".m3patch";
                File.WriteAllBytes(tmp, elf);
                File.Replace(tmp, path, null);
            }
            return result;
        }

        /// <summary>Patches <paramref name="elf"/> in place; returns what it did.</summary>
        public static ElfPatchResult MarkVersionWeak(byte[] elf, string versionName)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F'
                || elf[4] != 2 /* ELFCLASS64 */ || elf[5] != 1 /* little endian */)
                return ElfPatchResult.NotElf64;

            ulong shoff = U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A);
            int shnum = U16(elf, 0x3C);
            bool found = false, changed = false;
            for (int s = 0; s < shnum; s++)
            {
                long sh = checked((long)shoff + (long)s * shentsize);
                if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
                long offset = (long)U64(elf, sh + 24);
                uint link = U32(elf, sh + 40);
                uint count = U32(elf, sh + 44);
                long strtab = (long)U64(elf, checked((long)shoff + (long)link * shentsize) + 24);

                long vn = offset;
                for (uint i = 0; i < count; i++)
                {
                    int auxCount = U16(elf, vn + 2);
                    long aux = vn + U32(elf, vn + 8);
                    for (int a = 0; a < auxCount; a++)
                    {
                        string name = CString(elf, strtab + U32(elf, aux + 8));
                        if (name == versionName)
                        {
                            found = true;
                            ushort flags = U16(elf, aux + 4);
                            if ((flags & VerFlgWeak) == 0)
                            {
                                flags |= VerFlgWeak;
                                elf[aux + 4] = (byte)(flags & 0xff);
                                elf[aux + 5] = (byte)(flags >> 8);
                                changed = true;
                            }
                        }
                        uint next = U32(elf, aux + 12);
                        if (next == 0) break;
                        aux += next;
                    }
                    uint vnNext = U32(elf, vn + 12);
                    if (vnNext == 0) break;
                    vn += vnNext;
                }
            }
            if (!found) return ElfPatchResult.VersionNotRequired;
            return changed ? ElfPatchResult.Patched : ElfPatchResult.AlreadyPatched;
        }

        /// <summary>The vna_flags of the named version requirement, or null when the file does not require it.</summary>
        public static ushort? VersionFlags(byte[] elf, string versionName)
        {
            byte[] copy = (byte[])elf.Clone();
            ElfPatchResult r = MarkVersionWeak(copy, versionName);
            if (r == ElfPatchResult.NotElf64 || r == ElfPatchResult.VersionNotRequired) return null;
            return r == ElfPatchResult.AlreadyPatched ? VerFlgWeak : (ushort)0;
        }

        static ushort U16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;

        static string CString(byte[] b, long o)
        {
            long end = o;
            while (end < b.Length && b[end] != 0) end++;
            return Encoding.ASCII.GetString(b, (int)o, (int)(end - o));
        }
    }

#if !M3TRAIN_TESTS
    /// <summary>MSBuild task: marks GLIBCXX_3.4.32 weak in every given copy of libLibTorchSharp.so.</summary>
    public class PatchTorchSharpNative : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public string Version { get; set; } = "GLIBCXX_3.4.32";

        public override bool Execute()
        {
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                ElfPatchResult r = ElfVersionPatcher.MarkVersionWeak(path, Version);
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"{path}: {r}");
                if (r == ElfPatchResult.Patched)
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal, $"Marked {Version} weak in {path}");
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
