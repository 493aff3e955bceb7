using System.Security.Cryptography;

namespace M3Train.Distributed;

/// <summary>
/// The job's shared secret. It never travels: a peer proves it knows the token by an HMAC-SHA256 of the other
/// side's random nonce (see <see cref="Handshake"/>), compared in constant time, so a listener on the network
/// learns nothing it could replay. <see cref="ToString"/> hides it, so it cannot leak into a log.
/// </summary>
public sealed class JobToken
{
    /// <summary>Shorter secrets are refused: 16 characters of <c>openssl rand -hex 16</c> carry 64 bits.</summary>
    public const int MinimumLength = 16;

    readonly byte[] _key;

    JobToken(string value)
    {
        Value = value;
        _key = System.Text.Encoding.UTF8.GetBytes(value);
    }

    /// <summary>The text form, as passed to ranks in <see cref="DistributedVariables.JobToken"/>.</summary>
    public string Value { get; }

    /// <summary>256 random bits, as <c>m3train launch</c> makes one per job.</summary>
    public static JobToken Generate() => new(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));

    public static JobToken Parse(string value, string variable)
    {
        if (value.Trim().Length < MinimumLength)
            throw new DistributedException(
                $"{variable} is {value.Trim().Length} characters long; a job token needs at least {MinimumLength} " +
                "(make one with: openssl rand -hex 32).");
        return new JobToken(value.Trim());
    }

    internal byte[] Mac(ReadOnlySpan<byte> message) => HMACSHA256.HashData(_key, message);

    internal bool Verify(ReadOnlySpan<byte> message, ReadOnlySpan<byte> mac) =>
        CryptographicOperations.FixedTimeEquals(Mac(message), mac);

    public override string ToString() => "(job token)";
}
