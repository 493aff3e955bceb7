using System.Diagnostics;
using System.Text;
using M3Train.Distributed;
using Xunit;

namespace M3Train.Tests.Distributed;

public class RendezvousTests
{
    static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void SetGetAddAndWaitAcrossRanks()
    {
        using var store = new TestStore(2);
        var rank0 = store.Join(0);
        var rank1 = store.Join(1);
        Assert.Null(rank0.Get("missing"));
        rank0.Set("k", Bytes("v1"));
        Assert.Equal("v1", Encoding.UTF8.GetString(rank1.Get("k")!));
        rank1.Set("k", Bytes("v2"));
        Assert.Equal("v2", Encoding.UTF8.GetString(rank0.Get("k")!));

        Assert.Equal(1, rank0.Add("counter", 1));
        Assert.Equal(6, rank1.Add("counter", 5));
        Assert.Equal(4, rank0.Add("counter", -2));

        var waiting = Background.Run(() => Encoding.UTF8.GetString(rank1.Wait("later")));
        Thread.Sleep(100);
        Assert.False(waiting.IsCompleted);
        rank0.Set("later", Bytes("here"));
        Assert.Equal("here", waiting.Result(Background.Patience));
        Assert.Null(store.Server.Failure);
    }

    [Fact]
    public void ABarrierReleasesOnlyWhenEveryRankArrived()
    {
        using var store = new TestStore(3);
        var ranks = Enumerable.Range(0, 3).Select(r => store.Join(r)).ToList();
        var early = ranks.Take(2).Select(r => Background.Run(() => r.Barrier("step"))).ToList();
        Thread.Sleep(150);
        Assert.All(early, t => Assert.False(t.IsCompleted));
        ranks[2].Barrier("step");
        Assert.All(early, t => t.Result(Background.Patience));
        // The same name again is a new generation, not an already-open barrier.
        var again = Background.Run(() => ranks[0].Barrier("step"));
        Thread.Sleep(100);
        Assert.False(again.IsCompleted);
        var others = new[] { Background.Run(() => ranks[1].Barrier("step")), Background.Run(() => ranks[2].Barrier("step")) };
        Assert.All([again, .. others], t => t.Result(Background.Patience));
    }

    [Fact]
    public void AWaitThatTimesOutFailsTheRunForEveryRank()
    {
        using var store = new TestStore(2);
        var rank0 = store.Join(0);
        var rank1 = store.Join(1);
        string? seen = null;
        rank1.OnFailure(message => seen = message);
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<DistributedException>(() => rank0.Wait("never", TimeSpan.FromMilliseconds(300)));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.25, 5);
        Assert.Equal("rank 0 failed: waited 0.3 s for 'never' in the rendezvous", error.Message);
        Assert.True(TestStore.Eventually(() => seen != null, TimeSpan.FromSeconds(5)));
        Assert.Equal(error.Message, seen);
        Assert.Equal(error.Message, Assert.Throws<DistributedException>(() => rank1.Get("k")).Message);
    }

    [Fact]
    public void ABarrierTimeoutNamesTheRanksThatDidNotArrive()
    {
        using var store = new TestStore(4);
        var ranks = Enumerable.Range(0, 4).Select(r => store.Join(r)).ToList();
        var waiting = Background.Run(() => ranks[1].Barrier("checkpoint", TimeSpan.FromSeconds(30)));
        var error = Assert.Throws<DistributedException>(() => ranks[0].Barrier("checkpoint", TimeSpan.FromMilliseconds(400)));
        Assert.Equal("rank 0 failed: barrier 'checkpoint' timed out after 0.4 s: ranks 2, 3 did not arrive (stalled, or still busy elsewhere)", error.Message);
        // The rank still inside the barrier is released by the failure at once, not after its own 30 s.
        Assert.Equal(error.Message, waiting.Error(TimeSpan.FromSeconds(5)).Message);
    }

    [Fact]
    public void AReportedFailureReachesEveryRankAndEndsTheirWaits()
    {
        using var store = new TestStore(3);
        var ranks = Enumerable.Range(0, 3).Select(r => store.Join(r)).ToList();
        var notices = new string?[3];
        for (int r = 0; r < 3; r++)
        {
            int rank = r;
            ranks[r].OnFailure(m => notices[rank] = m);
        }
        var blocked = Background.Run(() => ranks[2].Wait("never", TimeSpan.FromSeconds(30)));
        Thread.Sleep(100);
        // Rank 0 is itself inside a long wait: its store connection is busy, and the report must not queue behind it.
        var busy = Background.Run(() => ranks[0].Wait("never either", TimeSpan.FromSeconds(30)));
        Thread.Sleep(100);
        ranks[0].ReportFailure("CUDA out of memory in step 12");
        const string expected = "rank 0 failed: CUDA out of memory in step 12";
        Assert.True(TestStore.Eventually(() => notices.All(n => n == expected), TimeSpan.FromSeconds(5)), string.Join(" | ", notices));
        Assert.Equal(expected, blocked.Error(TimeSpan.FromSeconds(5)).Message);
        Assert.Equal(expected, busy.Error(TimeSpan.FromSeconds(5)).Message);
        Assert.Equal(expected, store.Server.Failure);
        // A later failure elsewhere does not replace the first.
        ranks[1].ReportFailure("follow-on error");
        Assert.Equal(expected, store.Server.Failure);
    }

    [Fact]
    public void ARankWhoseConnectionClosesWithoutLeavingIsGone()
    {
        using var store = new TestStore(2);
        var rank0 = store.Join(0);
        var rank1 = store.Join(1);
        rank1.Dispose();
        Assert.True(TestStore.Eventually(() => rank0.Failure != null, TimeSpan.FromSeconds(5)));
        Assert.StartsWith("rank 1 is gone: its connection to the rendezvous closed", rank0.Failure);
    }

    [Fact]
    public void LeavingRanksAreNotFailures()
    {
        using var store = new TestStore(2);
        var rank0 = store.Join(0);
        var rank1 = store.Join(1);
        rank1.Leave();
        rank1.Dispose();
        rank0.Leave();
        Assert.True(store.Server.WaitForRanksToLeave(TimeSpan.FromSeconds(5)));
        Thread.Sleep(100);
        Assert.Null(store.Server.Failure);
        Assert.Null(rank0.Failure);
    }

    [Fact]
    public void RankZerosRendezvousGoingAwayIsSeenByTheOthers()
    {
        var store = new TestStore(2);
        store.Join(0);
        var rank1 = store.Join(1);
        store.Server.Dispose();
        Assert.True(TestStore.Eventually(() => rank1.Failure != null, TimeSpan.FromSeconds(5)));
        Assert.StartsWith("rank 0 is gone", rank1.Failure);
        Assert.StartsWith("rank 0 is gone", Assert.Throws<DistributedException>(() => rank1.Get("k")).Message);
        store.Dispose();
    }

    [Fact]
    public void ARankWithTheWrongTokenIsToldSo()
    {
        using var store = new TestStore(2);
        var error = Assert.Throws<DistributedException>(() => store.Join(1, JobToken.Generate()));
        Assert.Contains("refused rank 1's job token: every rank needs the same M3_JOB_TOKEN", error.Message);
        Assert.Equal(1, store.Server.RefusedConnections);
    }

    [Fact]
    public void RanksOutOfRangeOrJoiningTwiceAreRefused()
    {
        using var store = new TestStore(2);
        store.Join(1);
        Assert.Contains("refused rank 1 (Store): that rank is out of range or already joined", Assert.Throws<DistributedException>(() => store.Join(1)).Message);
        Assert.Contains("refused rank 2", Assert.Throws<DistributedException>(() => store.Join(2)).Message);
    }

    [Fact]
    public void NobodyListensMeansAClearJoinError()
    {
        int port;
        using (var probe = new TestStore(1)) port = probe.Port;
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<DistributedException>(() =>
            RendezvousClient.Connect("127.0.0.1", port, JobToken.Generate(), 1, 2, TimeSpan.FromSeconds(5), TimeSpan.FromMilliseconds(500)));
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.3, 5);
        Assert.Contains($"rank 1 could not join the rendezvous at 127.0.0.1:{port}", error.Message);
        Assert.Contains("Is rank 0 running", error.Message);
    }

    [Fact]
    public void RankZeroRefusesALoopbackMasterAddressWhenRanksRunOnOtherMachines()
    {
        var error = Assert.Throws<DistributedException>(() => RendezvousServer.StartOnMaster("127.0.0.1", 0, JobToken.Generate(), 4, otherMachines: true));
        Assert.Contains("a loopback address the other machines cannot reach", error.Message);
        using var alone = RendezvousServer.StartOnMaster("localhost", 0, JobToken.Generate(), 4);
        Assert.True(System.Net.IPAddress.IsLoopback(alone.Endpoint.Address));
    }

    [Fact]
    public void AMasterAddressOfAnotherMachineIsRefusedByRankZero()
    {
        var error = Assert.Throws<DistributedException>(() => RendezvousServer.StartOnMaster("192.0.2.1", 0, JobToken.Generate(), 2));
        Assert.Contains("192.0.2.1", error.Message);
        Assert.Contains("none of which is an address of this machine", error.Message);
    }

    [Fact]
    public void AStoreValueOverTheLimitIsRefusedBeforeItIsSent()
    {
        using var store = new TestStore(1);
        var rank0 = store.Join(0);
        Assert.Throws<ArgumentException>(() => rank0.Set("big", new byte[StoreMessage.MaxValueBytes + 1]));
        rank0.Set("fits", new byte[StoreMessage.MaxValueBytes]);
        Assert.Equal(StoreMessage.MaxValueBytes, rank0.Get("fits")!.Length);
    }

    [Theory]
    [InlineData(new byte[] { 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 1, 5, 0, (byte)'a' })]
    [InlineData(new byte[] { 1, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 42 })]
    public void MalformedRequestsAreRejectedByTheParser(byte[] frame)
    {
        Assert.Throws<InvalidDataException>(() => StoreMessage.DecodeRequest(frame));
    }

    [Fact]
    public void RequestsAndRepliesRoundTrip()
    {
        var request = StoreMessage.DecodeRequest(StoreMessage.Request(StoreOp.Add, "ключ", [1, 2, 3], -7).EncodeRequest());
        Assert.Equal((StoreOp.Add, "ключ", -7L), (request.Op, request.Key, request.Number));
        Assert.Equal([1, 2, 3], request.Value);
        var reply = StoreMessage.DecodeReply(StoreMessage.Reply(StoreStatus.Failed, [4], 9, "rank 3 failed: x").EncodeReply());
        Assert.Equal((StoreStatus.Failed, 9L, "rank 3 failed: x"), (reply.Status, reply.Number, reply.Text));
    }
}
