using System.Text.Json;
using System.Text;
using M3Train.Text;

namespace M3Train.Onnx;

/// <summary>
/// The JSON line <c>m3train encode</c> prints per text, whichever backend computed it:
/// <c>{"dense":[...],"lexical_weights":{"&lt;id&gt;":w,...},"colbert":[[...],...]}</c> with only the requested parts
/// (FlagEmbedding's <c>dense_vecs</c> and <c>colbert_vecs</c> with <see cref="EncodeKeyNames.FlagEmbedding"/>).
/// Floats are written in their shortest round-trip form, so a reader gets the exact float32 values back.
/// </summary>
public static class EncodeOutputJson
{
    public static string Format(M3Encoding encoding, EncodingParts parts, EncodeKeyNames keys = EncodeKeyNames.M3Train)
    {
        bool flagEmbedding = keys == EncodeKeyNames.FlagEmbedding;
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (parts.HasFlag(EncodingParts.Dense))
            {
                json.WriteStartArray(flagEmbedding ? "dense_vecs" : "dense");
                foreach (float v in encoding.Dense) json.WriteNumberValue(v);
                json.WriteEndArray();
            }
            if (parts.HasFlag(EncodingParts.Lexical))
            {
                json.WriteStartObject("lexical_weights");
                foreach (var (id, w) in encoding.LexicalWeights) json.WriteNumber(id.ToString(), w);
                json.WriteEndObject();
            }
            if (parts.HasFlag(EncodingParts.Colbert))
            {
                json.WriteStartArray(flagEmbedding ? "colbert_vecs" : "colbert");
                foreach (float[] row in encoding.ColbertVecs)
                {
                    json.WriteStartArray();
                    foreach (float v in row) json.WriteNumberValue(v);
                    json.WriteEndArray();
                }
                json.WriteEndArray();
            }
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }
}
