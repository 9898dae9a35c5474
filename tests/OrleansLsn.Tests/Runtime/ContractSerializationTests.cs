using OrleansLsn.Runtime;
using OrleansLsn.Runtime.Invocation;
using OrleansLsn.Runtime.Serialization;
using Xunit;

namespace OrleansLsn.Tests.GrainRuntime;

public sealed class ContractSerializationTests
{
    [Theory]
    [InlineData(typeof(ILsnTrackerGrain))]
    [InlineData(typeof(ILsnObserver))]
    [InlineData(typeof(IReplicationGrain))]
    [InlineData(typeof(IChangeObserver))]
    public void ProductContract_PassesTheAllowlist(Type contract)
    {
        InterfaceDescriptor descriptor = new InterfaceRegistry(new ContractSerializer()).Get(contract);

        Assert.Equal(contract.GetMethods().Length, descriptor.Methods.Count);
    }

    [Fact]
    public void ContractValues_RoundTrip()
    {
        var serializer = new ContractSerializer();
        var relation = new ChangeRelation(16384, "public", "orders", [new ChangeColumn("id", 23, true), new ChangeColumn("note", 25, false)]);
        var batch = new ChangeBatch
        {
            Slot = "s",
            Sequence = 3,
            CommitLsn = Lsn.Parse("16/B374D848"),
            EndLsn = Lsn.Parse("16/B374D900"),
            Xid = 900,
            CommitTime = DateTimeOffset.Parse("2026-11-21T10:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
            Fragment = 0,
            IsLastFragment = true,
            FirstChangeIndex = 0,
            Changes = [new RowChange(ChangeKind.Insert, relation, ["1", null], UnchangedToastColumns: [1])],
        };

        ChangeBatch back = RoundTrip(serializer, batch);
        Assert.Equal(batch.CommitLsn, back.CommitLsn);
        Assert.Equal(batch.CommitTime, back.CommitTime);
        Assert.Equal("orders", back.Changes[0].Relation.Name);
        Assert.Equal(["1", null], back.Changes[0].NewValues!);
        Assert.Equal([1], back.Changes[0].UnchangedToastColumns!);

        var wait = new LsnWaitResult(LsnWaitOutcome.Ready, Lsn.Parse("0/10"));
        Assert.Equal(wait, RoundTrip(serializer, wait));
        Assert.Equal(Lsn.Parse("1/2"), RoundTrip(serializer, Lsn.Parse("1/2")));
        Assert.Null(RoundTrip<Lsn?>(serializer, null));
    }

    [Fact]
    public void TruncatedContractValue_IsAClearError()
    {
        var serializer = new ContractSerializer();
        using var buffer = new FrameBuffer();
        serializer.GetCodec(typeof(LsnWaitResult)).Write(buffer, new LsnWaitResult(LsnWaitOutcome.TimedOut, null), NoReferences.Instance);
        byte[] bytes = buffer.WrittenSpan[4..^3].ToArray();

        Assert.Throws<GrainSerializationException>(() =>
        {
            var reader = new SpanReader(bytes);
            return serializer.GetCodec(typeof(LsnWaitResult)).Read(ref reader, NoReferences.Instance);
        });
    }

    private static T RoundTrip<T>(ContractSerializer serializer, T value)
    {
        using var buffer = new FrameBuffer();
        ValueCodec codec = serializer.GetCodec(typeof(T));
        codec.Write(buffer, value, NoReferences.Instance);
        var reader = new SpanReader(buffer.WrittenSpan[4..]);
        T result = (T)codec.Read(ref reader, NoReferences.Instance)!;
        Assert.Equal(0, reader.Remaining);
        return result;
    }

    private sealed class NoReferences : IReferenceContext
    {
        public static readonly NoReferences Instance = new();

        public ReferenceAddress GetAddress(object reference, Type declaredType) => throw new NotSupportedException();

        public object CreateReference(Type interfaceType, ReferenceAddress address) => throw new NotSupportedException();
    }
}
