using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace M3Train.Tests.Build;

/// <summary>
/// Which namespaces the code of each namespace of a compiled assembly uses, read from its metadata as the compiler
/// left it (no type is loaded): every type a type definition names in its base type, interfaces, fields, method and
/// property signatures, attributes, generic constraints and local variables, and every type, method or field its
/// method bodies refer to. Nested types (lambdas' closures, iterators) count for the namespace of the type that
/// holds them. Only namespaces under <paramref name="prefix"/> are kept.
/// </summary>
public static class NamespaceDependencies
{
    static readonly Dictionary<short, OperandType> Operands = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value, o => o.OperandType);

    /// <summary>(from, to) → one example of the use, "Type.Member uses Type", for the failure message.</summary>
    public static Dictionary<(string From, string To), string> Read(string assemblyPath, string prefix)
    {
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var reader = pe.GetMetadataReader();
        var edges = new Dictionary<(string, string), string>();
        var names = new SignatureNames(reader);
        foreach (var typeHandle in reader.TypeDefinitions)
        {
            var type = reader.GetTypeDefinition(typeHandle);
            string from = names.Namespace(typeHandle);
            string typeName = reader.GetString(type.Name);
            void Use(IEnumerable<string> namespaces, string where)
            {
                foreach (string to in namespaces)
                    if (to != from && to.StartsWith(prefix, StringComparison.Ordinal) && from.StartsWith(prefix, StringComparison.Ordinal))
                        edges.TryAdd((from, to), $"{typeName}.{where}");
            }

            if (!type.BaseType.IsNil) Use(names.Of(type.BaseType), "base type");
            foreach (var i in type.GetInterfaceImplementations()) Use(names.Of(reader.GetInterfaceImplementation(i).Interface), "interface");
            foreach (var a in type.GetCustomAttributes()) Use(names.OfAttribute(a), "attribute");
            foreach (var p in type.GetGenericParameters())
                foreach (var c in reader.GetGenericParameter(p).GetConstraints())
                    Use(names.Of(reader.GetGenericParameterConstraint(c).Type), "constraint");
            foreach (var f in type.GetFields())
            {
                var field = reader.GetFieldDefinition(f);
                Use(names.OfFieldSignature(field.Signature), reader.GetString(field.Name));
                foreach (var a in field.GetCustomAttributes()) Use(names.OfAttribute(a), reader.GetString(field.Name));
            }
            foreach (var p in type.GetProperties())
            {
                var property = reader.GetPropertyDefinition(p);
                foreach (var a in property.GetCustomAttributes()) Use(names.OfAttribute(a), reader.GetString(property.Name));
            }
            foreach (var m in type.GetMethods())
            {
                var method = reader.GetMethodDefinition(m);
                string where = reader.GetString(method.Name);
                Use(names.OfMethodSignature(method.Signature), where);
                foreach (var a in method.GetCustomAttributes()) Use(names.OfAttribute(a), where);
                foreach (var p in method.GetParameters())
                    foreach (var a in reader.GetParameter(p).GetCustomAttributes()) Use(names.OfAttribute(a), where);
                if (method.RelativeVirtualAddress == 0) continue;
                var body = pe.GetMethodBody(method.RelativeVirtualAddress);
                if (!body.LocalSignature.IsNil)
                    Use(names.OfLocals(reader.GetStandaloneSignature(body.LocalSignature).Signature), where);
                foreach (var token in Tokens(body.GetILBytes() ?? []))
                    Use(names.Of(MetadataTokens.EntityHandle(token)), where);
            }
        }
        return edges;
    }

    /// <summary>The metadata tokens an IL stream refers to (types, methods, fields; not strings).</summary>
    static IEnumerable<int> Tokens(byte[] il)
    {
        int i = 0;
        while (i < il.Length)
        {
            short value = il[i] == 0xFE ? (short)(0xFE00 | il[i + 1]) : il[i];
            i += il[i] == 0xFE ? 2 : 1;
            switch (Operands[value])
            {
                case OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineType or OperandType.InlineTok:
                    yield return BitConverter.ToInt32(il, i);
                    i += 4;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + 4 * BitConverter.ToInt32(il, i);
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineBrTarget or OperandType.InlineI or OperandType.InlineSig or OperandType.InlineString or OperandType.ShortInlineR:
                    i += 4;
                    break;
                case OperandType.InlineVar:
                    i += 2;
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    i += 1;
                    break;
            }
        }
    }

    /// <summary>The namespaces named by handles and signature blobs.</summary>
    sealed class SignatureNames(MetadataReader reader) : ISignatureTypeProvider<ImmutableArray<string>, object?>
    {
        static readonly ImmutableArray<string> None = [];

        public string Namespace(TypeDefinitionHandle handle)
        {
            var type = reader.GetTypeDefinition(handle);
            var outer = type.GetDeclaringType();
            return outer.IsNil ? reader.GetString(type.Namespace) : Namespace(outer);
        }

        string Namespace(TypeReferenceHandle handle)
        {
            var type = reader.GetTypeReference(handle);
            return type.ResolutionScope.Kind == HandleKind.TypeReference
                ? Namespace((TypeReferenceHandle)type.ResolutionScope)
                : reader.GetString(type.Namespace);
        }

        public IEnumerable<string> Of(EntityHandle handle) => handle.Kind switch
        {
            HandleKind.TypeDefinition => [Namespace((TypeDefinitionHandle)handle)],
            HandleKind.TypeReference => [Namespace((TypeReferenceHandle)handle)],
            HandleKind.TypeSpecification => reader.GetTypeSpecification((TypeSpecificationHandle)handle).DecodeSignature(this, null),
            HandleKind.MethodDefinition => [Namespace(reader.GetMethodDefinition((MethodDefinitionHandle)handle).GetDeclaringType())],
            HandleKind.FieldDefinition => [Namespace(reader.GetFieldDefinition((FieldDefinitionHandle)handle).GetDeclaringType())],
            HandleKind.MemberReference => OfMember(reader.GetMemberReference((MemberReferenceHandle)handle)),
            HandleKind.MethodSpecification => OfMethodSpec(reader.GetMethodSpecification((MethodSpecificationHandle)handle)),
            _ => [],
        };

        IEnumerable<string> OfMember(MemberReference member)
        {
            var parent = member.Parent.Kind == HandleKind.ModuleReference ? [] : Of(member.Parent);
            var signature = member.GetKind() == MemberReferenceKind.Method
                ? OfMethodSignature(member.Signature)
                : OfFieldSignature(member.Signature);
            return parent.Concat(signature);
        }

        IEnumerable<string> OfMethodSpec(MethodSpecification spec) =>
            Of(spec.Method).Concat(spec.DecodeSignature(this, null).SelectMany(a => a));

        public IEnumerable<string> OfAttribute(CustomAttributeHandle handle) => Of(reader.GetCustomAttribute(handle).Constructor);

        public IEnumerable<string> OfFieldSignature(BlobHandle blob)
        {
            var decoder = new SignatureDecoder<ImmutableArray<string>, object?>(this, reader, null);
            var signature = reader.GetBlobReader(blob);
            return decoder.DecodeFieldSignature(ref signature);
        }

        public IEnumerable<string> OfMethodSignature(BlobHandle blob)
        {
            var decoder = new SignatureDecoder<ImmutableArray<string>, object?>(this, reader, null);
            var signature = reader.GetBlobReader(blob);
            var method = decoder.DecodeMethodSignature(ref signature);
            return method.ReturnType.Concat(method.ParameterTypes.SelectMany(p => p));
        }

        public IEnumerable<string> OfLocals(BlobHandle blob)
        {
            var decoder = new SignatureDecoder<ImmutableArray<string>, object?>(this, reader, null);
            var signature = reader.GetBlobReader(blob);
            return decoder.DecodeLocalSignature(ref signature).SelectMany(l => l);
        }

        public ImmutableArray<string> GetPrimitiveType(PrimitiveTypeCode typeCode) => None;
        public ImmutableArray<string> GetTypeFromDefinition(MetadataReader r, TypeDefinitionHandle handle, byte rawTypeKind) => [Namespace(handle)];
        public ImmutableArray<string> GetTypeFromReference(MetadataReader r, TypeReferenceHandle handle, byte rawTypeKind) => [Namespace(handle)];
        public ImmutableArray<string> GetTypeFromSpecification(MetadataReader r, object? context, TypeSpecificationHandle handle, byte rawTypeKind) =>
            r.GetTypeSpecification(handle).DecodeSignature(this, context);
        public ImmutableArray<string> GetSZArrayType(ImmutableArray<string> elementType) => elementType;
        public ImmutableArray<string> GetArrayType(ImmutableArray<string> elementType, ArrayShape shape) => elementType;
        public ImmutableArray<string> GetByReferenceType(ImmutableArray<string> elementType) => elementType;
        public ImmutableArray<string> GetPointerType(ImmutableArray<string> elementType) => elementType;
        public ImmutableArray<string> GetPinnedType(ImmutableArray<string> elementType) => elementType;
        public ImmutableArray<string> GetGenericInstantiation(ImmutableArray<string> genericType, ImmutableArray<ImmutableArray<string>> typeArguments) =>
            [.. genericType, .. typeArguments.SelectMany(a => a)];
        public ImmutableArray<string> GetGenericMethodParameter(object? context, int index) => None;
        public ImmutableArray<string> GetGenericTypeParameter(object? context, int index) => None;
        public ImmutableArray<string> GetFunctionPointerType(MethodSignature<ImmutableArray<string>> signature) =>
            [.. signature.ReturnType, .. signature.ParameterTypes.SelectMany(p => p)];
        public ImmutableArray<string> GetModifiedType(ImmutableArray<string> modifier, ImmutableArray<string> unmodifiedType, bool isRequired) => unmodifiedType;
    }
}
