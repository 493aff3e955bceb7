using System.Buffers.Binary;
using System.Security.Cryptography;

namespace M3Train.Distributed;

/// <summary>
/// Mutual proof of the job token, the first exchange on every connection (store, watch and ring links):
/// <code>
/// server → client   "M3RV" version=1 server_nonce[32]                                   37 bytes
/// client → server   "M3RV" version=1 role rank(i32 LE) client_nonce[32] client_mac[32]   74 bytes
/// server → client   status(0 admitted, 1 wrong token, 2 rank refused) server_mac[32]     33 bytes
/// client_mac = HMAC-SHA256(token, "m3 client" ‖ server_nonce ‖ client_nonce ‖ role ‖ rank)
/// server_mac = HMAC-SHA256(token, "m3 server" ‖ client_nonce ‖ server_nonce)
/// </code>
/// Both MACs are compared in constant time. The token itself never travels and the nonces make a recorded
/// handshake useless; the data that follows is not encrypted (run on a trusted cluster network).
/// </summary>
public static class Handshake
{
    public const int ServerHelloBytes = 37;
    public const int ClientHelloBytes = 74;
    public const int ReplyBytes = 33;

    const byte Version = 1;
    static ReadOnlySpan<byte> Magic => "M3RV"u8;

    public enum Status : byte { Admitted = 0, WrongToken = 1, RankRefused = 2 }

    /// <summary>The listening side. Returns the peer's role and rank, or null when it was refused (already told why).</summary>
    /// <param name="admit">Whether an authenticated peer of this role and rank may join (ranges, duplicates).</param>
    public static async Task<(PeerRole Role, int Rank)?> AcceptAsync(
        WireSocket socket, JobToken token, Func<PeerRole, int, bool> admit, CancellationToken cancel)
    {
        var serverNonce = RandomNumberGenerator.GetBytes(32);
        var hello = new byte[ServerHelloBytes];
        Magic.CopyTo(hello);
        hello[4] = Version;
        serverNonce.CopyTo(hello, 5);
        await socket.WriteAsync(hello, cancel).ConfigureAwait(false);

        var reply = new byte[ClientHelloBytes];
        await socket.ReadExactlyAsync(reply, cancel).ConfigureAwait(false);
        if (!reply.AsSpan(0, 4).SequenceEqual(Magic) || reply[4] != Version || !Enum.IsDefined((PeerRole)reply[5]))
            throw new InvalidDataException("its greeting is not an m3train handshake");
        var role = (PeerRole)reply[5];
        int rank = BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(6, 4));
        var clientNonce = reply.AsSpan(10, 32).ToArray();
        if (!token.Verify(ClientMessage(serverNonce, clientNonce, role, rank), reply.AsSpan(42, 32)))
        {
            await socket.WriteAsync(Refusal(Status.WrongToken), cancel).ConfigureAwait(false);
            return null;
        }
        if (!admit(role, rank))
        {
            await socket.WriteAsync(Refusal(Status.RankRefused), cancel).ConfigureAwait(false);
            return null;
        }
        var admitted = new byte[ReplyBytes];
        admitted[0] = (byte)Status.Admitted;
        token.Mac(ServerMessage(clientNonce, serverNonce)).CopyTo(admitted, 1);
        await socket.WriteAsync(admitted, cancel).ConfigureAwait(false);
        return (role, rank);
    }

    /// <summary>The connecting side: proves the token, checks the listener knows it too, or throws saying why not.</summary>
    public static async Task ConnectAsync(WireSocket socket, JobToken token, PeerRole role, int rank, string listener, CancellationToken cancel)
    {
        var hello = new byte[ServerHelloBytes];
        await socket.ReadExactlyAsync(hello, cancel).ConfigureAwait(false);
        if (!hello.AsSpan(0, 4).SequenceEqual(Magic) || hello[4] != Version)
            throw new DistributedException($"{listener} is not an m3train rendezvous or rank (its greeting is not an m3train handshake): check the port.");
        var serverNonce = hello.AsSpan(5, 32).ToArray();
        var clientNonce = RandomNumberGenerator.GetBytes(32);
        var reply = new byte[ClientHelloBytes];
        Magic.CopyTo(reply);
        reply[4] = Version;
        reply[5] = (byte)role;
        BinaryPrimitives.WriteInt32LittleEndian(reply.AsSpan(6, 4), rank);
        clientNonce.CopyTo(reply, 10);
        token.Mac(ClientMessage(serverNonce, clientNonce, role, rank)).CopyTo(reply, 42);
        await socket.WriteAsync(reply, cancel).ConfigureAwait(false);

        var answer = new byte[ReplyBytes];
        await socket.ReadExactlyAsync(answer, cancel).ConfigureAwait(false);
        switch ((Status)answer[0])
        {
            case Status.WrongToken:
                throw new DistributedException(
                    $"{listener} refused rank {rank}'s job token: every rank needs the same {DistributedVariables.JobToken}.");
            case Status.RankRefused:
                throw new DistributedException(
                    $"{listener} refused rank {rank} ({role}): that rank is out of range or already joined; check each process's rank variable.");
            case Status.Admitted when token.Verify(ServerMessage(clientNonce, serverNonce), answer.AsSpan(1, 32)):
                return;
            default:
                throw new DistributedException($"{listener} could not prove it knows the job token: it is not this job's rendezvous or rank.");
        }
    }

    static byte[] Refusal(Status status)
    {
        var reply = new byte[ReplyBytes];
        reply[0] = (byte)status;
        return reply;
    }

    static byte[] ClientMessage(byte[] serverNonce, byte[] clientNonce, PeerRole role, int rank)
    {
        var message = new byte[9 + 32 + 32 + 1 + 4];
        "m3 client"u8.CopyTo(message);
        serverNonce.CopyTo(message, 9);
        clientNonce.CopyTo(message, 41);
        message[73] = (byte)role;
        BinaryPrimitives.WriteInt32LittleEndian(message.AsSpan(74), rank);
        return message;
    }

    static byte[] ServerMessage(byte[] clientNonce, byte[] serverNonce)
    {
        var message = new byte[9 + 32 + 32];
        "m3 server"u8.CopyTo(message);
        clientNonce.CopyTo(message, 9);
        serverNonce.CopyTo(message, 41);
        return message;
    }
}
