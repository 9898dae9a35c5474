using Npgsql;
using OrleansLsn.Replication;
using OrleansLsn.Replication.Snapshot;
using OrleansLsn.Tests.Infrastructure;
using Xunit;

namespace OrleansLsn.Tests.Replication;

/// <summary>
/// The copy and the stream speak the same language: rows of many types inserted on the real primary are read once by
/// <see cref="TableSnapshotReader"/> and once as they arrive through the <see cref="ReplicationPump"/> (pgoutput), and
/// every column's text is the same in both, so a consumer can rebuild a table from a copy and then apply changes.
/// </summary>
public sealed class SnapshotMatchesStreamTests(PostgresFixture fixture)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task EveryColumnsText_IsTheSame_InTheSnapshotAndInTheStream()
    {
        await using ReplicationScenario scenario = await ReplicationScenario.CreateAsync(
            fixture.PrimaryConnectionString, nameof(EveryColumnsText_IsTheSame_InTheSnapshotAndInTheStream),
            "id bigint primary key, b bool, n numeric, f float8, r real, at timestamptz, ts timestamp, d date, iv interval, " +
            "j jsonb, a int[], by bytea, u uuid, t text, m money, ip inet");
        (ReplicationPump pump, BatchRecorder recorder) = await scenario.StartStreamingAsync();
        await scenario.ExecuteAsync(
            $"insert into {scenario.Table} values " +
            "(1, true, 12.50, 0.1, 1.5, '2026-01-02 03:04:05.123456+02', '2026-01-02 03:04:05', '2026-01-02', '1 day 02:03:04', " +
            "'{\"a\": [1, 2], \"b\": null}', '{1,2,NULL}', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'x''y\"z', 12.34, '10.0.0.1/8'), " +
            "(2, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null), " +
            "(3, false, -1e-20, 'NaN', '-Infinity', 'infinity', '1999-12-31 23:59:59.999999', '0001-01-01 BC', '-3 mons', " +
            "'[]', '{}', '\\x', '00000000-0000-0000-0000-000000000000', '', -0.01, '::1'), " +
            // Characters COPY's text format escapes (tab, newline, carriage return, backslash, a literal \N), and more.
            "(4, null, null, null, null, null, null, null, null, jsonb_build_object('k', 'a' || chr(9) || chr(92) || 'b' || chr(10)), " +
            "null, '\\x5c5c4e', null, 'tab' || chr(9) || 'nl' || chr(10) || 'cr' || chr(13) || 'bs' || chr(92) || 'N' || chr(92) || chr(92) || ' é😀', null, null)");
        await Wait.UntilAsync(() => recorder.ConfirmedRows.Count() >= 4, TimeSpan.FromSeconds(30), () => $"4 rows in the stream; got {recorder.ConfirmedRows.Count()}; status {pump.Status}", Ct);
        Dictionary<string, IReadOnlyList<string?>> streamed = recorder.ConfirmedRows.ToDictionary(r => r["id"]!, r => (IReadOnlyList<string?>)r.NewValues!);

        var copied = new Dictionary<string, IReadOnlyList<string?>>();
        IReadOnlyList<string> columns = [];
        await using (NpgsqlDataSource dataSource = NpgsqlDataSource.Create(fixture.PrimaryConnectionString))
        {
            await foreach (SnapshotChunk chunk in TableSnapshotReader.ReadAsync(dataSource, ["public." + scenario.Table], chunkSize: 2, cancellationToken: Ct))
            {
                columns = [.. chunk.Relation.Columns.Select(c => c.Name)];
                foreach (IReadOnlyList<string?> row in chunk.Rows)
                {
                    copied[row[0]!] = row;
                }
            }
        }

        Assert.Equal(recorder.ConfirmedRows.First().Relation.Columns.Select(c => c.Name), columns);
        Assert.Equal(["1", "2", "3", "4"], copied.Keys.Order());
        Assert.Contains("\\N", copied["4"][columns.ToList().IndexOf("t")], StringComparison.Ordinal);
        foreach ((string id, IReadOnlyList<string?> row) in copied)
        {
            for (int i = 0; i < columns.Count; i++)
            {
                Assert.True(streamed[id][i] == row[i], $"row {id}, column {columns[i]}: the stream has {streamed[id][i] ?? "NULL"}, the snapshot {row[i] ?? "NULL"}");
            }
        }
    }
}
