using System.Diagnostics;
using System.Reflection;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using M3Train.Build;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace M3Train.Tests.Build;

public class TorchSharpLifetimePatchTests(ITestOutputHelper output)
{
    static string Loaded => typeof(torch).Assembly.Location;
    static string Pristine => Path.Combine(AppContext.BaseDirectory, "pristine", "TorchSharp.dll");

    const MethodImplAttributes KeepAlive = TorchSharpLifetimePatcher.KeepAlive;

    [Fact]
    public void TheLoadedTorchSharpIsThePackagesFileWithOnlyThePatchApplied()
    {
        byte[] pristine = File.ReadAllBytes(Pristine), loaded = File.ReadAllBytes(Loaded);
        Assert.Equal(TorchSharpLifetimePatcher.PackageSha256, Sha256(pristine));
        Assert.Equal(TorchSharpLifetimePatcher.PatchedSha256, Sha256(loaded));
        Assert.Equal(pristine.Length, loaded.Length);

        var again = (byte[])pristine.Clone();
        var report = TorchSharpLifetimePatcher.Patch(again);
        Assert.Equal(LifetimePatchResult.Patched, report.Result);
        Assert.Equal(loaded, again);
        output.WriteLine($"{report.Marked} methods marked; {pristine.Zip(loaded).Count(p => p.First != p.Second)} bytes differ");
    }

    [Fact]
    public void ExactlyTheMethodsTheRuleNamesAreMarked()
    {
        // The rule restated on the runtime's own reading of the IL (Module.ResolveMethod), independent of CallGraph.
        var toMark = MethodsToMarkAsTheRuntimeResolvesThem(typeof(torch).Assembly.ManifestModule);
        using var before = new PEReader(File.OpenRead(Pristine));
        using var after = new PEReader(File.OpenRead(Loaded));
        MetadataReader b = before.GetMetadataReader(), a = after.GetMetadataReader();
        int changed = 0;
        foreach (var handle in b.MethodDefinitions)
        {
            var was = b.GetMethodDefinition(handle);
            var now = a.GetMethodDefinition(handle);
            var expected = toMark.Contains(MetadataTokens.GetToken(handle))
                ? (was.ImplAttributes | KeepAlive) & ~MethodImplAttributes.AggressiveOptimization
                : was.ImplAttributes;
            Assert.True(expected == now.ImplAttributes,
                $"{b.GetString(b.GetTypeDefinition(was.GetDeclaringType()).Name)}.{b.GetString(was.Name)}: {now.ImplAttributes}, expected {expected}");
            Assert.Equal(was.Attributes, now.Attributes);
            Assert.Equal(was.RelativeVirtualAddress, now.RelativeVirtualAddress);
            changed += now.ImplAttributes != was.ImplAttributes ? 1 : 0;
        }
        output.WriteLine($"{toMark.Count} of {b.MethodDefinitions.Count} methods call libtorch or a non-public method that does; {changed} changed");
        Assert.InRange(toMark.Count, 500, b.MethodDefinitions.Count);

        // As the runtime sees them: the wrapper that takes a Scalar is kept whole, the operator that makes one is not.
        Assert.Equal(KeepAlive, Flags(typeof(Tensor).GetMethod(nameof(Tensor.mul), [typeof(Scalar)])!));
        Assert.Equal(MethodImplAttributes.IL, Flags(typeof(Tensor).GetMethod("op_Multiply", [typeof(Tensor), typeof(double)])!));
        // hstack(IList<Tensor>) hands bare handles to a private helper that calls libtorch: it owns the Tensors.
        Assert.Equal(KeepAlive, Flags(typeof(torch).GetMethod(nameof(torch.hstack), [typeof(IList<Tensor>)])!));
        // Reached only through the calls the rule follows beyond call/callvirt to a MethodDef:
        // newobj of ReLU's internal constructor, which calls its generic base's through a MemberRef, which calls libtorch;
        Assert.Equal(KeepAlive, Flags(typeof(nn).GetMethod(nameof(nn.ReLU), [typeof(bool)])!));
        // a MethodSpec: tensor(Memory<float>, ...) hands the memory to the private _tensor_generic<float>;
        Assert.Equal(KeepAlive, Flags(typeof(torch).GetMethods().Single(m => m.Name == nameof(torch.tensor)
            && m.GetParameters()[0].ParameterType == typeof(Memory<float>))));
        // a MemberRef of a generic type's instantiation: ReadCpuSingle reads through TensorAccessor<float>.ReadItemAt.
        Assert.Equal(KeepAlive, Flags(typeof(Tensor).GetMethod(nameof(Tensor.ReadCpuSingle))!));
        // ldftn: Module's handle type takes the address of the P/Invoke that frees a module, as its release callback.
        Assert.Equal(KeepAlive, Flags(typeof(nn.Module).GetNestedType("HType", BindingFlags.NonPublic)!
            .GetConstructors().Single(c => c.GetParameters().Length == 3)));
        Assert.True(M3Train.Runtime.BuildInfo.TorchSharpArgumentsKeptAlive);
        Assert.Null(M3Train.Runtime.BuildInfo.TorchSharpPatchWarning());
    }

    /// <summary>
    /// Each way a method can reach another in IL, in a module built here: only the methods that reach a P/Invoke
    /// directly, or a non-public method that does, are named.
    /// </summary>
    [Fact]
    public void TheRuleFollowsNewobjLdftnMemberRefsAndMethodSpecs()
    {
        using var pe = new PEReader(new MemoryStream(SampleModule()));
        MetadataReader md = pe.GetMetadataReader();
        var graph = new CallGraph(pe, md);
        var marked = TorchSharpLifetimePatcher.MethodsToMark(graph).Select(graph.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(
        [
            "Api.ViaCall", "Api.ViaLdftn", "Api.ViaLdvirtftn", "Api.ViaMemberRef", "Api.ViaMethodSpec", "Api.ViaNewobj",
            "Helper`1.Invoke", "Helpers..ctor", "Helpers.Generic", "Helpers.Lambda", "Helpers.Plain", "Helpers.PublicCaller",
            "Helpers.Virtual",
        ], marked);
    }

    [Fact]
    public void PatchingTwiceChangesNothing_AndACopyPatchedByAnEarlierRuleIsCompleted()
    {
        var loaded = File.ReadAllBytes(Loaded);
        var copy = (byte[])loaded.Clone();
        var report = TorchSharpLifetimePatcher.Patch(copy);
        Assert.Equal(LifetimePatchResult.AlreadyPatched, report.Result);
        Assert.Equal(0, report.Changed);
        Assert.True(report.Marked > 0);
        Assert.Equal(loaded, copy);

        // An output patched before the rule followed newobj: the ReLU factory is not marked yet.
        var older = (byte[])loaded.Clone();
        int at = ImplFlagsOffset(older, typeof(nn).GetMethod(nameof(nn.ReLU), [typeof(bool)])!.MetadataToken);
        older[at] &= unchecked((byte)~(byte)KeepAlive);
        var completed = TorchSharpLifetimePatcher.Patch(older);
        Assert.Equal(LifetimePatchResult.Patched, completed.Result);
        Assert.Equal(1, completed.Changed);
        Assert.Equal(loaded, older);
    }

    [Fact]
    public void FilesThatAreNotReadableManagedCodeAreLeftAlone()
    {
        var native = new byte[4096];
        "\u007fELF"u8.ToArray().CopyTo(native, 0);
        var nativeCopy = (byte[])native.Clone();
        var elf = TorchSharpLifetimePatcher.Patch(nativeCopy);
        Assert.Equal(LifetimePatchResult.NotManaged, elf.Result);
        Assert.Equal("not a managed PE file", elf.Reason);
        Assert.Equal(native, nativeCopy);

        var pristine = File.ReadAllBytes(Pristine);
        var pristineHalf = pristine[..(pristine.Length / 2)];
        var truncated = (byte[])pristineHalf.Clone();
        var cut = TorchSharpLifetimePatcher.Patch(truncated);
        Assert.Equal(LifetimePatchResult.NotManaged, cut.Result);
        Assert.StartsWith("unreadable metadata", cut.Reason);
        Assert.Equal(pristineHalf, truncated);
        var (path, messages) = RefusedByTheCommand(pristineHalf);
        Assert.StartsWith($"{path}: error M3PATCH: unreadable metadata (", messages);
        Assert.EndsWith("; cannot keep TorchSharp's native arguments alive", messages.TrimEnd());

        var enc = EditAndContinueModule();
        var encCopy = (byte[])enc.Clone();
        var delta = TorchSharpLifetimePatcher.Patch(encCopy);
        Assert.Equal(LifetimePatchResult.NotManaged, delta.Result);
        Assert.Contains("edit-and-continue", delta.Reason);
        Assert.Equal(enc, encCopy);
    }

    [Fact]
    public void ATorchSharpNobodyCheckedIsRefusedWithWhatToDo()
    {
        byte[] pristine = File.ReadAllBytes(Pristine);

        // Another version: the Assembly row's minor version (after HashAlgId and MajorVersion) set to 108.
        var newer = (byte[])pristine.Clone();
        using (var pe = new PEReader(new MemoryStream(pristine)))
        {
            int row = pe.PEHeaders.MetadataStartOffset + pe.GetMetadataReader().GetTableMetadataOffset(TableIndex.Assembly);
            BitConverter.TryWriteBytes(newer.AsSpan(row + 6), (ushort)108);
        }
        var newerCopy = (byte[])newer.Clone();
        var version = TorchSharpLifetimePatcher.Patch(newerCopy);
        Assert.Equal(LifetimePatchResult.NotChecked, version.Result);
        Assert.Contains("TorchSharp 0.108.0.0 is not the version the lifetime patch was checked on (0.107.0)", version.Reason);
        Assert.Contains("Directory.Packages.props", version.Reason);
        Assert.Contains($"(this file: version 0.108.0.0, SHA-256 {Sha256(newer)}, patched ", version.Reason);
        Assert.Equal(newer, newerCopy);

        // The same version, rebuilt: one byte of the PE header's time stamp differs.
        var rebuilt = (byte[])pristine.Clone();
        using (var pe = new PEReader(new MemoryStream(pristine)))
            rebuilt[pe.PEHeaders.CoffHeaderStartOffset + 4] ^= 1;
        var (path, messages) = RefusedByTheCommand(rebuilt);
        Assert.StartsWith($"{path}: error M3PATCH: this TorchSharp.dll is not the TorchSharp 0.107.0 package's", messages);
        Assert.Contains("update the pins in build/TorchSharpLifetimePatcher/TorchSharpLifetimePatcher.cs", messages);
        Assert.Contains($"(this file: version 0.107.0.0, SHA-256 {Sha256(rebuilt)}, patched ", messages);
    }

    /// <summary>
    /// Runs the build's command on a copy of <paramref name="file"/> named TorchSharp.dll, expecting a refusal that
    /// leaves the copy as it was; returns the copy's path and the command's output.
    /// </summary>
    static (string Path, string Messages) RefusedByTheCommand(byte[] file)
    {
        string path = Path.Combine(Path.GetTempPath(), $"m3-lifetime-{Guid.NewGuid():N}", "TorchSharp.dll");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            File.WriteAllBytes(path, file);
            var messages = new StringWriter();
            Assert.Equal(LifetimePatchCommand.Refused, LifetimePatchCommand.Run([path], messages));
            Assert.Equal(file, File.ReadAllBytes(path));
            // MSBuild's error format, so the build fails with the line as its error.
            Assert.StartsWith($"{path}: error M3PATCH: ", messages.ToString());
            return (path, messages.ToString());
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }

    /// <summary>
    /// The failure the patch prevents: scalar arithmetic while another thread forces garbage collections. A race, so
    /// a probabilistic guard (the test above is the exact one): with the package's TorchSharp.dll in the output, 2 of
    /// 4 runs of this test failed, with 1 or 2 errors in about 400,000 operations ("Expected false to be true").
    /// </summary>
    [Trait("Category", "Slow")]
    [Fact]
    public void ScalarArithmeticSurvivesCollectionsOnAnotherThread()
    {
        bool stop = false;
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                var junk = new byte[64 * 1024][];
                for (int i = 0; i < junk.Length; i++) junk[i] = new byte[32];
                GC.Collect(0);
            }
        });
        collector.Start();
        var errors = new List<string>();
        long ops = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            using var t = arange(16L).to(float32);
            while (clock.Elapsed < TimeSpan.FromSeconds(4))
            {
                for (int k = 0; k < 500; k++)
                {
                    try
                    {
                        using var scaled = t * 2.0;         // a Scalar made inside TorchSharp
                        using var sum = scaled + t;         // alpha = 1, another
                        using var nonZero = sum.ne(0);      // one made here
                        using var fifth = sum[5];
                        ops += 3;
                        if (fifth.item<float>() != 15f) errors.Add($"wrong value {fifth.item<float>()}");
                    }
                    catch (Exception e) { errors.Add(e.Message.Split('\n')[0]); }
                }
            }
        }
        finally
        {
            Volatile.Write(ref stop, true);
            collector.Join();
        }
        output.WriteLine($"{ops} scalar operations in {clock.Elapsed.TotalSeconds:F1} s, {errors.Count} failed");
        Assert.True(errors.Count == 0, string.Join("\n", errors.Distinct().Take(5)));
        Assert.True(ops > 10_000, $"only {ops} operations ran");
    }

    static MethodImplAttributes Flags(MethodBase method) => method.MethodImplementationFlags & KeepAlive;

    static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The file offset of a method's ImplFlags, as ECMA-335 lays out the MethodDef row.</summary>
    static int ImplFlagsOffset(byte[] image, int token)
    {
        using var pe = new PEReader(new MemoryStream(image));
        MetadataReader md = pe.GetMetadataReader();
        return pe.PEHeaders.MetadataStartOffset + md.GetTableMetadataOffset(TableIndex.MethodDef)
             + (MetadataTokens.GetRowNumber(MetadataTokens.EntityHandle(token)) - 1) * md.GetTableRowSize(TableIndex.MethodDef) + 4;
    }

    /// <summary>The rule on the runtime's view: P/Invoke callers, then callers of non-public marked methods (tokens).</summary>
    static HashSet<int> MethodsToMarkAsTheRuntimeResolvesThem(Module module)
    {
        const BindingFlags Declared = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic
                                      | BindingFlags.Static | BindingFlags.Instance;
        var methods = module.GetTypes()
            .SelectMany(t => t.GetMethods(Declared).Cast<MethodBase>().Concat(t.GetConstructors(Declared)))
            .ToDictionary(m => m.MetadataToken);
        using (var pe = new PEReader(File.OpenRead(module.Assembly.Location)))
            Assert.Equal(pe.GetMetadataReader().MethodDefinitions.Count, methods.Count);
        var callees = methods.ToDictionary(kv => kv.Key, kv => Callees(kv.Value, module).Where(methods.ContainsKey).ToList());
        bool IsPinvoke(int m) => (methods[m].Attributes & MethodAttributes.PinvokeImpl) != 0;
        bool IsPublic(int m) => (methods[m].Attributes & MethodAttributes.MemberAccessMask) == MethodAttributes.Public;
        var marked = callees.Where(kv => kv.Value.Any(IsPinvoke)).Select(kv => kv.Key).ToHashSet();
        for (bool grew = true; grew;)
        {
            var more = callees.Where(kv => !marked.Contains(kv.Key) && kv.Value.Any(c => marked.Contains(c) && !IsPublic(c)))
                .Select(kv => kv.Key).ToList();
            marked.UnionWith(more);
            grew = more.Count > 0;
        }
        return marked;
    }

    /// <summary>The definition tokens of the methods <paramref name="method"/> calls or takes the address of, in <paramref name="module"/>.</summary>
    static IEnumerable<int> Callees(MethodBase method, Module module)
    {
        byte[]? il = method.GetMethodBody()?.GetILAsByteArray();
        if (il == null) yield break;
        Type[]? typeArgs = method.DeclaringType!.IsGenericType ? method.DeclaringType.GetGenericArguments() : null;
        Type[]? methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            int op = il[i++];
            if (op == 0xFE) op = 0xFE00 | il[i++];
            OpCode code = OpCodesByValue[op];
            if (code.OperandType == OperandType.InlineSwitch) { i += 4 + 4 * BitConverter.ToInt32(il, i); continue; }
            if (code == OpCodes.Call || code == OpCodes.Callvirt || code == OpCodes.Newobj || code == OpCodes.Ldftn || code == OpCodes.Ldvirtftn)
            {
                MethodBase target = module.ResolveMethod(BitConverter.ToInt32(il, i), typeArgs, methodArgs)!;
                if (target.Module == module) yield return target.MetadataToken;
            }
            i += code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                _ => 4,
            };
        }
    }

    static readonly Dictionary<int, OpCode> OpCodesByValue = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(c => (int)(ushort)c.Value);

    /// <summary>
    /// A module with a P/Invoke <c>Native.Op(IntPtr)</c>, non-public helpers that call it, and a public method reaching
    /// each helper in one of the ways IL can: call, callvirt (ldvirtftn), newobj, ldftn, a MemberRef of a generic type's
    /// instantiation, a MethodSpec.
    /// </summary>
    static byte[] SampleModule()
    {
        var assembly = new PersistedAssemblyBuilder(new AssemblyName("LifetimeSample"), typeof(object).Assembly);
        ModuleBuilder module = assembly.DefineDynamicModule("LifetimeSample");
        const MethodAttributes Internal = MethodAttributes.Assembly | MethodAttributes.Static;
        const MethodAttributes Public = MethodAttributes.Public | MethodAttributes.Static;

        TypeBuilder native = module.DefineType("Native", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
        MethodBuilder op = native.DefinePInvokeMethod("Op", "native", Public, CallingConventions.Standard, null,
            [typeof(IntPtr)], CallingConvention.Cdecl, CharSet.Ansi);

        MethodBuilder Define(TypeBuilder type, string name, MethodAttributes attributes, Action<ILGenerator> body,
            Type[]? parameters = null)
        {
            MethodBuilder m = type.DefineMethod(name, attributes, typeof(void), parameters ?? [typeof(IntPtr)]);
            ILGenerator il = m.GetILGenerator();
            body(il);
            il.Emit(OpCodes.Ret);
            return m;
        }
        void CallsOp(ILGenerator il) { il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Call, op); }

        TypeBuilder helpers = module.DefineType("Helpers", TypeAttributes.Public);
        MethodBuilder plain = Define(helpers, "Plain", Internal, CallsOp);
        MethodBuilder lambda = Define(helpers, "Lambda", Internal, CallsOp);
        MethodBuilder publicCaller = Define(helpers, "PublicCaller", Public, CallsOp);
        MethodBuilder generic = helpers.DefineMethod("Generic", Internal, typeof(void), [typeof(IntPtr)]);
        generic.DefineGenericParameters("T");
        ILGenerator gil = generic.GetILGenerator();
        CallsOp(gil);
        gil.Emit(OpCodes.Ret);
        MethodBuilder virtualHelper = helpers.DefineMethod("Virtual", MethodAttributes.Assembly | MethodAttributes.Virtual,
            typeof(void), [typeof(IntPtr)]);
        ILGenerator vil = virtualHelper.GetILGenerator();
        vil.Emit(OpCodes.Ldarg_1);
        vil.Emit(OpCodes.Call, op);
        vil.Emit(OpCodes.Ret);
        ConstructorBuilder ctor = helpers.DefineConstructor(MethodAttributes.Assembly, CallingConventions.Standard, [typeof(IntPtr)]);
        ILGenerator cil = ctor.GetILGenerator();
        cil.Emit(OpCodes.Ldarg_0);
        cil.Emit(OpCodes.Call, typeof(object).GetConstructor(Type.EmptyTypes)!);
        cil.Emit(OpCodes.Ldarg_1);
        cil.Emit(OpCodes.Call, op);
        cil.Emit(OpCodes.Ret);

        TypeBuilder helperOfT = module.DefineType("Helper`1", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
        helperOfT.DefineGenericParameters("T");
        MethodBuilder invoke = Define(helperOfT, "Invoke", Internal, CallsOp);

        TypeBuilder api = module.DefineType("Api", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
        Define(api, "ViaCall", Public, il => { il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Call, plain); });
        Define(api, "ViaNewobj", Public, il => { il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Newobj, ctor); il.Emit(OpCodes.Pop); });
        Define(api, "ViaLdftn", Public, il =>
        {
            il.Emit(OpCodes.Ldnull);
            il.Emit(OpCodes.Ldftn, lambda);
            il.Emit(OpCodes.Newobj, typeof(Action<IntPtr>).GetConstructors()[0]);
            il.Emit(OpCodes.Pop);
        });
        Define(api, "ViaLdvirtftn", Public, parameters: [helpers], body: il =>
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Dup);
            il.Emit(OpCodes.Ldvirtftn, virtualHelper);
            il.Emit(OpCodes.Newobj, typeof(Action<IntPtr>).GetConstructors()[0]);
            il.Emit(OpCodes.Pop);
        });
        Define(api, "ViaMemberRef", Public, il =>
        {
            il.Emit(OpCodes.Ldarg_0);
            il.Emit(OpCodes.Call, TypeBuilder.GetMethod(helperOfT.MakeGenericType(typeof(int)), invoke));
        });
        Define(api, "ViaMethodSpec", Public, il => { il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Call, generic.MakeGenericMethod(typeof(int))); });
        // A public method that calls libtorch keeps its own frame; its callers are not marked for it.
        Define(api, "ViaPublicOnly", Public, il => { il.Emit(OpCodes.Ldarg_0); il.Emit(OpCodes.Call, publicCaller); });
        Define(api, "OtherAssembly", Public, parameters: [], body: il => il.Emit(OpCodes.Call, typeof(GC).GetMethod(nameof(GC.Collect), Type.EmptyTypes)!));

        foreach (var type in new[] { native, helpers, helperOfT, api }) type.CreateType();
        var image = new MemoryStream();
        assembly.Save(image);
        return image.ToArray();
    }

    /// <summary>A module whose metadata carries an edit-and-continue log.</summary>
    static byte[] EditAndContinueModule()
    {
        var metadata = new MetadataBuilder();
        metadata.AddModule(0, metadata.GetOrAddString("Delta.dll"), metadata.GetOrAddGuid(Guid.NewGuid()), default, default);
        metadata.AddAssembly(metadata.GetOrAddString("Delta"), new Version(1, 0), default, default, default, AssemblyHashAlgorithm.Sha1);
        metadata.AddTypeDefinition(default, default, metadata.GetOrAddString("<Module>"), default,
            MetadataTokens.FieldDefinitionHandle(1), MetadataTokens.MethodDefinitionHandle(1));
        metadata.AddEncLogEntry(MetadataTokens.TypeDefinitionHandle(1), EditAndContinueOperation.Default);
        metadata.AddEncMapEntry(MetadataTokens.TypeDefinitionHandle(1));
        var pe = new BlobBuilder();
        new ManagedPEBuilder(PEHeaderBuilder.CreateLibraryHeader(), new MetadataRootBuilder(metadata), new BlobBuilder()).Serialize(pe);
        return pe.ToArray();
    }
}
