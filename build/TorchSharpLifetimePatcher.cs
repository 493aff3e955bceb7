// Keeps TorchSharp's native arguments alive through the libtorch calls made with them.
//
// TorchSharp 0.107 passes a Scalar's or a Tensor's native handle to libtorch as an IntPtr and does nothing to keep
// the managed owner alive during the call. Once the JIT has optimized the calling method, the owner is dead as soon
// as its handle is loaded, so a garbage collection started by another thread during the call can run the owner's
// finalizer, which frees the native object libtorch is about to read. Numbers are the common case: `t * 2.0`,
// `a + b` (alpha = 1) and `t.ne(0)` all build a temporary Scalar. Seen as "Unknown scalar type", "Expected false to
// be true" from c10::Scalar::toLong, or a segfault, in about 1 test-suite run in 6, and reproduced at about 25 errors
// per million scalar operations under a thread that forces collections.
//
// The fix marks every TorchSharp method that calls a P/Invoke as NoOptimization | NoInlining (2 bytes of its
// MethodDef row), and the callers of marked methods that are not public (helpers such as hstack(IntPtr[]) receive
// bare handles; the method that owns the Tensors must keep them). Unoptimized code reports `this` and the arguments
// as live for the whole method, so the handles' owners outlive the native call whatever the caller did; not
// inlining keeps that frame. Nothing else changes: the
// IL, the signatures and the other methods are as shipped. Compiled twice: into the build as an inline MSBuild task
// (see TorchNativePatch.targets) and into the tests, which define M3TRAIN_TESTS.
#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection.Emit;
using System.Text;

namespace M3Train.Build
{
    public enum LifetimePatchResult { Patched, AlreadyPatched, NotManaged }

    public sealed class LifetimePatchReport
    {
        public LifetimePatchResult Result;
        /// <summary>Methods that call a P/Invoke (patched now or before).</summary>
        public int Callers;
        /// <summary>Of those, the ones changed by this run.</summary>
        public int Changed;
        /// <summary>Why the file was not patched (<see cref="LifetimePatchResult.NotManaged"/>).</summary>
        public string Reason = "";
    }

    public static class TorchSharpLifetimePatcher
    {
        public const ushort NoInlining = 0x0008, NoOptimization = 0x0040, AggressiveOptimization = 0x0200;
        const ushort PinvokeImpl = 0x2000, MemberAccessMask = 0x0007, Public = 0x0006;

        public static LifetimePatchReport Patch(string path)
        {
            byte[] image = File.ReadAllBytes(path);
            LifetimePatchReport report = Patch(image);
            if (report.Result == LifetimePatchResult.Patched)
            {
                // A new file renamed over the old one: never writes through a hard link into a package cache.
                string tmp = path + ".m3patch";
                File.WriteAllBytes(tmp, image);
                File.Replace(tmp, path, null);
            }
            return report;
        }

        /// <summary>Patches <paramref name="image"/> (a managed PE file) in place; a file it cannot read is left as it was.</summary>
        public static LifetimePatchReport Patch(byte[] image)
        {
            var report = new LifetimePatchReport { Result = LifetimePatchResult.NotManaged };
            var changes = new List<(long At, ushort Flags)>();
            try
            {
                Metadata? md = Metadata.Read(image);
                if (md == null)
                {
                    report.Reason = "not a managed PE file";
                    return report;
                }
                bool[] marked = MethodsToMark(image, md);
                for (int row = 0; row < md.MethodCount; row++)
                {
                    if (!marked[row]) continue;
                    report.Callers++;
                    long at = md.MethodRow(row) + 4;
                    ushort implFlags = U16(image, at);
                    // NoOptimization and AggressiveOptimization may not be combined.
                    ushort wanted = (ushort)((implFlags | NoOptimization | NoInlining) & ~AggressiveOptimization);
                    if (wanted != implFlags) changes.Add((at, wanted));
                }
            }
            catch (Exception e) when (e is FormatException || e is IndexOutOfRangeException || e is ArgumentOutOfRangeException)
            {
                report.Callers = 0;
                report.Reason = $"unreadable metadata ({e.Message})";
                return report;
            }
            foreach (var (at, flags) in changes)
            {
                image[at] = (byte)(flags & 0xff);
                image[at + 1] = (byte)(flags >> 8);
            }
            report.Changed = changes.Count;
            report.Result = changes.Count > 0 ? LifetimePatchResult.Patched : LifetimePatchResult.AlreadyPatched;
            return report;
        }

        /// <summary>
        /// The MethodDef rows (0-based) to mark: every method that calls a P/Invoke of the module, and every caller
        /// of a marked method that is not public (a private helper such as <c>hstack(IntPtr[])</c> receives bare
        /// handles, so the method that owns the Tensors is the one whose frame must stay), transitively.
        /// </summary>
        public static bool[] MethodsToMark(byte[] image, Metadata md)
        {
            var marked = new bool[md.MethodCount];
            var callees = new List<int>[md.MethodCount];
            for (int row = 0; row < md.MethodCount; row++)
            {
                callees[row] = Callees(image, md, row);
                foreach (int callee in callees[row])
                    if ((md.MethodFlags(image, callee) & PinvokeImpl) != 0) marked[row] = true;
            }
            for (bool grew = true; grew;)
            {
                grew = false;
                for (int row = 0; row < md.MethodCount; row++)
                {
                    if (marked[row]) continue;
                    foreach (int callee in callees[row])
                        if (marked[callee] && (md.MethodFlags(image, callee) & MemberAccessMask) != Public)
                        {
                            marked[row] = grew = true;
                            break;
                        }
                }
            }
            return marked;
        }

        /// <summary>The MethodDef rows (0-based) that the body of row <paramref name="row"/> calls (call, callvirt).</summary>
        public static List<int> Callees(byte[] image, Metadata md, int row)
        {
            var result = new List<int>();
            long methodRow = md.MethodRow(row);
            uint rva = U32(image, methodRow);
            if (rva == 0) return result;
            long header = md.Offset(rva);
            long code;
            uint codeSize;
            if ((image[header] & 3) == 2) { codeSize = (uint)(image[header] >> 2); code = header + 1; }
            else if ((image[header] & 3) == 3) { codeSize = U32(image, header + 4); code = header + 4 * (image[header + 1] >> 4); }
            else throw new FormatException($"method row {row + 1}: unknown method header 0x{image[header]:X2}");

            long end = code + codeSize, i = code;
            while (i < end)
            {
                int op = image[i++];
                if (op == 0xFE) op = 0xFE00 | image[i++];
                if (op == 0x45) { i += 4 + 4L * U32(image, i); continue; }                        // switch
                if (op == 0x28 || op == 0x6F)                                                       // call, callvirt
                {
                    uint token = U32(image, i);
                    int target = (int)(token & 0xFFFFFF) - 1;
                    if (token >> 24 == 0x06 && target >= 0 && target < md.MethodCount) result.Add(target);
                }
                i += OperandSize(op);
            }
            if (i != end) throw new FormatException($"method row {row + 1}: IL does not end on an instruction boundary");
            return result;
        }

        static Dictionary<int, int>? operandSizes;

        static int OperandSize(int op)
        {
            if (operandSizes == null)
            {
                var sizes = new Dictionary<int, int>();
                foreach (var field in typeof(OpCodes).GetFields())
                {
                    var code = (OpCode)field.GetValue(null)!;
                    int size;
                    switch (code.OperandType)
                    {
                        case OperandType.InlineNone: size = 0; break;
                        case OperandType.ShortInlineBrTarget:
                        case OperandType.ShortInlineI:
                        case OperandType.ShortInlineVar: size = 1; break;
                        case OperandType.InlineVar: size = 2; break;
                        case OperandType.InlineI8:
                        case OperandType.InlineR: size = 8; break;
                        default: size = 4; break;
                    }
                    sizes[(ushort)code.Value] = size;
                }
                operandSizes = sizes;
            }
            if (!operandSizes.TryGetValue(op, out int s)) throw new FormatException($"unknown IL opcode 0x{op:X}");
            return s;
        }

        /// <summary>Just enough of ECMA-335 to find the MethodDef table and map RVAs to file offsets.</summary>
        public sealed class Metadata
        {
            long[] sectionVa = Array.Empty<long>(), sectionSize = Array.Empty<long>(), sectionRaw = Array.Empty<long>(),
                   sectionRawSize = Array.Empty<long>();
            long methodTable;
            int methodRowSize;
            public int MethodCount { get; private set; }

            public long MethodRow(int row) => methodTable + (long)row * methodRowSize;

            /// <summary>The Flags column (MethodAttributes) of MethodDef row <paramref name="row"/> (0-based).</summary>
            public ushort MethodFlags(byte[] image, int row) => U16(image, MethodRow(row) + 6);

            public long Offset(long rva)
            {
                for (int s = 0; s < sectionVa.Length; s++)
                    if (rva >= sectionVa[s] && rva < sectionVa[s] + sectionSize[s])
                    {
                        if (rva - sectionVa[s] >= sectionRawSize[s]) throw new FormatException($"RVA 0x{rva:X} is past its section's data");
                        return rva - sectionVa[s] + sectionRaw[s];
                    }
                throw new FormatException($"RVA 0x{rva:X} is in no section");
            }

            /// <summary>The metadata of a managed PE image; null when the file is not one.</summary>
            public static Metadata? Read(byte[] pe)
            {
                if (pe.Length < 0x40 || pe[0] != (byte)'M' || pe[1] != (byte)'Z') return null;
                long nt = U32(pe, 0x3C);
                if (U32(pe, nt) != 0x00004550) return null;                                       // "PE\0\0"
                long coff = nt + 4;
                int sections = U16(pe, coff + 2), optionalSize = U16(pe, coff + 16);
                long optional = coff + 20;
                int magic = U16(pe, optional);
                long directories = optional + (magic == 0x20B ? 112 : magic == 0x10B ? 96 : throw new FormatException("unknown optional header"));
                var md = new Metadata
                {
                    sectionVa = new long[sections], sectionSize = new long[sections], sectionRaw = new long[sections],
                    sectionRawSize = new long[sections],
                };
                long table = optional + optionalSize;
                for (int s = 0; s < sections; s++)
                {
                    long h = table + 40L * s;
                    md.sectionVa[s] = U32(pe, h + 12);
                    md.sectionSize[s] = Math.Max(U32(pe, h + 8), U32(pe, h + 16));
                    md.sectionRaw[s] = U32(pe, h + 20);
                    md.sectionRawSize[s] = U32(pe, h + 16);
                }
                if (U32(pe, directories - 4) <= 14) return null;                                     // NumberOfRvaAndSizes
                uint cliRva = U32(pe, directories + 14 * 8);
                if (cliRva == 0) return null;
                long cli = md.Offset(cliRva);
                long root = md.Offset(U32(pe, cli + 8));
                if (U32(pe, root) != 0x424A5342) throw new FormatException("no metadata signature");
                long p = root + 16 + U32(pe, root + 12);
                int streams = U16(pe, p + 2);
                p += 4;
                long tables = -1;
                for (int s = 0; s < streams; s++)
                {
                    uint offset = U32(pe, p);
                    var name = new StringBuilder();
                    long n = p + 8;
                    while (pe[n] != 0) name.Append((char)pe[n++]);
                    if (name.ToString() == "#~") tables = root + offset;
                    else if (name.ToString() == "#-") throw new FormatException("uncompressed metadata tables are not supported");
                    p = n + 1;
                    p = (p + 3) & ~3L;
                }
                if (tables < 0) throw new FormatException("no #~ stream");

                int heapSizes = pe[tables + 6];
                if ((heapSizes & 0xA0) != 0) throw new FormatException($"edit-and-continue metadata (HeapSizes 0x{heapSizes:X2}) is not supported");
                int str = (heapSizes & 1) != 0 ? 4 : 2, guid = (heapSizes & 2) != 0 ? 4 : 2, blob = (heapSizes & 4) != 0 ? 4 : 2;
                ulong valid = U32(pe, tables + 8) | (ulong)U32(pe, tables + 12) << 32;
                var rows = new uint[64];
                long r = tables + 24;
                for (int t = 0; t < 64; t++)
                    if ((valid >> t & 1) != 0) { rows[t] = U32(pe, r); r += 4; }
                if ((heapSizes & 0x40) != 0) r += 4;                                                 // extra data

                int Index(int t) => rows[t] < 0x10000 ? 2 : 4;
                int Coded(int tagBits, params int[] ts)
                {
                    uint max = 0;
                    foreach (int t in ts) max = Math.Max(max, rows[t]);
                    return max < 1u << (16 - tagBits) ? 2 : 4;
                }
                const int Module = 0x00, TypeRef = 0x01, TypeDef = 0x02, FieldPtr = 0x03, Field = 0x04, MethodPtr = 0x05,
                          MethodDef = 0x06, Param = 0x08, ModuleRef = 0x1A, TypeSpec = 0x1B, AssemblyRef = 0x23;
                var rowSize = new int[7];
                rowSize[Module] = 2 + str + 3 * guid;
                rowSize[TypeRef] = Coded(2, Module, ModuleRef, AssemblyRef, TypeRef) + 2 * str;
                rowSize[TypeDef] = 4 + 2 * str + Coded(2, TypeDef, TypeRef, TypeSpec) + Index(Field) + Index(MethodDef);
                rowSize[FieldPtr] = Index(Field);
                rowSize[Field] = 2 + str + blob;
                rowSize[MethodPtr] = Index(MethodDef);
                rowSize[MethodDef] = 4 + 2 + 2 + str + blob + Index(Param);
                if (rows[MethodPtr] != 0) throw new FormatException("MethodPtr indirection is not supported");

                long at = r;
                for (int t = 0; t < MethodDef; t++) at += (long)rows[t] * rowSize[t];
                md.methodTable = at;
                md.methodRowSize = rowSize[MethodDef];
                md.MethodCount = (int)rows[MethodDef];
                return md;
            }
        }

        static ushort U16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
    }

#if !M3TRAIN_TESTS
    /// <summary>MSBuild task: keeps native arguments alive in every given copy of TorchSharp.dll.</summary>
    public class PatchTorchSharpLifetimes : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public Microsoft.Build.Framework.ITaskItem[] Files { get; set; } = Array.Empty<Microsoft.Build.Framework.ITaskItem>();

        public override bool Execute()
        {
            foreach (var item in Files)
            {
                string path = item.ItemSpec;
                LifetimePatchReport r = TorchSharpLifetimePatcher.Patch(path);
                if (r.Result == LifetimePatchResult.NotManaged)
                    Log.LogError($"{path}: {r.Reason}; cannot keep TorchSharp's native arguments alive");
                else if (r.Callers == 0)
                    Log.LogError($"{path}: no method calls a P/Invoke; this TorchSharp build is not one the patch knows");
                else
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                        $"{path}: {r.Result}, {r.Callers} P/Invoke callers, {r.Changed} changed");
            }
            return !Log.HasLoggedErrors;
        }
    }
#endif
}
