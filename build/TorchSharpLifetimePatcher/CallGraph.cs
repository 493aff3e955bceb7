using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace M3Train.Build;

/// <summary>
/// For each method of a module, the module's own methods its IL calls (call, callvirt, newobj) or takes the address
/// of (ldftn, ldvirtftn, for a delegate or a native callback). A target is found whether the token names its
/// MethodDef, a MemberRef (how IL names a method of a generic type's instantiation, or a vararg call site) or a
/// MethodSpec (a generic method's instantiation). Methods of other assemblies are left out.
/// </summary>
public sealed class CallGraph
{
    readonly PEReader pe;
    readonly MetadataReader md;
    readonly Dictionary<MemberReferenceHandle, MethodDefinitionHandle?> memberRefs = [];

    public CallGraph(PEReader pe, MetadataReader md)
    {
        this.pe = pe;
        this.md = md;
    }

    public MetadataReader Metadata => md;

    /// <summary>The module's methods that <paramref name="method"/>'s body calls or takes the address of.</summary>
    public List<MethodDefinitionHandle> Callees(MethodDefinitionHandle method)
    {
        var result = new List<MethodDefinitionHandle>();
        int rva = md.GetMethodDefinition(method).RelativeVirtualAddress;
        if (rva == 0) return result;
        BlobReader il = pe.GetMethodBody(rva).GetILReader();
        while (il.RemainingBytes > 0)
        {
            int op = il.ReadByte();
            if (op == 0xFE) op = 0xFE00 | il.ReadByte();
            switch ((ILOpCode)op)
            {
                case ILOpCode.Call or ILOpCode.Callvirt or ILOpCode.Newobj or ILOpCode.Ldftn or ILOpCode.Ldvirtftn:
                    if (Resolve(MetadataTokens.EntityHandle(il.ReadInt32())) is { } target) result.Add(target);
                    break;
                case ILOpCode.Switch:
                    uint targets = il.ReadUInt32();
                    if (targets > il.RemainingBytes / 4)
                        throw new BadImageFormatException($"{Name(method)}: a switch runs past the end of the method");
                    il.Offset += 4 * (int)targets;
                    break;
                default:
                    il.Offset += OperandSizes.TryGetValue(op, out int size) ? size
                        : throw new BadImageFormatException($"{Name(method)}: unknown IL opcode 0x{op:X}");
                    break;
            }
        }
        return result;
    }

    /// <summary>"Type.Method", for messages.</summary>
    public string Name(MethodDefinitionHandle method)
    {
        MethodDefinition m = md.GetMethodDefinition(method);
        return $"{md.GetString(md.GetTypeDefinition(m.GetDeclaringType()).Name)}.{md.GetString(m.Name)}";
    }

    MethodDefinitionHandle? Resolve(EntityHandle token) => token.Kind switch
    {
        HandleKind.MethodDefinition => (MethodDefinitionHandle)token,
        HandleKind.MethodSpecification => Resolve(md.GetMethodSpecification((MethodSpecificationHandle)token).Method),
        HandleKind.MemberReference => ResolveMemberRef((MemberReferenceHandle)token),
        _ => throw new BadImageFormatException($"a call names token 0x{MetadataTokens.GetToken(token):X8}, which is not a method"),
    };

    MethodDefinitionHandle? ResolveMemberRef(MemberReferenceHandle handle)
    {
        if (memberRefs.TryGetValue(handle, out var known)) return known;
        MemberReference reference = md.GetMemberReference(handle);
        MethodDefinitionHandle? target = reference.Parent.Kind == HandleKind.MethodDefinition
            ? (MethodDefinitionHandle)reference.Parent
            : OwnType(reference.Parent) is { } type ? MethodOf(type, reference) : null;
        memberRefs[handle] = target;
        return target;
    }

    /// <summary>
    /// The type definition of this module that <paramref name="type"/> names, itself or as the generic type of an
    /// instantiation such as <c>Dictionary`2&lt;string, int&gt;</c>; null for another assembly's type, an array or a pointer.
    /// </summary>
    TypeDefinitionHandle? OwnType(EntityHandle type)
    {
        switch (type.Kind)
        {
            case HandleKind.TypeDefinition:
                return (TypeDefinitionHandle)type;
            case HandleKind.TypeSpecification:
                BlobReader signature = md.GetBlobReader(md.GetTypeSpecification((TypeSpecificationHandle)type).Signature);
                if (signature.ReadSignatureTypeCode() != SignatureTypeCode.GenericTypeInstance) return null;
                signature.ReadSignatureTypeCode();                                               // class or valuetype
                return OwnType(signature.ReadTypeHandle());
            case HandleKind.TypeReference:
                TypeReference reference = md.GetTypeReference((TypeReferenceHandle)type);
                while (reference.ResolutionScope.Kind == HandleKind.TypeReference)                // nested: its outermost type
                    reference = md.GetTypeReference((TypeReferenceHandle)reference.ResolutionScope);
                if (reference.ResolutionScope.Kind == HandleKind.ModuleDefinition)
                    throw new BadImageFormatException(
                        $"{md.GetString(reference.Name)} is a reference to this module's own type, which the patch does not follow");
                return null;
            default:
                return null;
        }
    }

    /// <summary>The method of <paramref name="type"/> with the reference's name and signature.</summary>
    MethodDefinitionHandle MethodOf(TypeDefinitionHandle type, MemberReference reference)
    {
        ImmutableArray<byte> signature = md.GetBlobContent(reference.Signature);
        foreach (MethodDefinitionHandle candidate in md.GetTypeDefinition(type).GetMethods())
        {
            MethodDefinition m = md.GetMethodDefinition(candidate);
            if (md.StringComparer.Equals(m.Name, md.GetString(reference.Name))
                && md.GetBlobContent(m.Signature).SequenceEqual(signature))
                return candidate;
        }
        throw new BadImageFormatException(
            $"{md.GetString(md.GetTypeDefinition(type).Name)}.{md.GetString(reference.Name)} is called but not defined with that signature");
    }

    static readonly Dictionary<int, int> OperandSizes = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(code => (int)(ushort)code.Value, code => code.OperandType switch
        {
            OperandType.InlineNone => 0,
            OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
            OperandType.InlineVar => 2,
            OperandType.InlineI8 or OperandType.InlineR => 8,
            _ => 4,
        });
}
