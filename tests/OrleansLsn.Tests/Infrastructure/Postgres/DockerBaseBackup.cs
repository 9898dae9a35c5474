using System.Formats.Tar;
using System.Text;
using Docker.DotNet;
using Docker.DotNet.Models;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// A low-level base backup between containers, for images without a <c>pg_basebackup</c> that speaks to their server
/// (<c>deploy/local-images.sh --pg N</c>): <see cref="LowLevelBaseBackup.RunAsync"/> on the primary over SQL, the
/// primary's data folder taken out of its container as a tar stream (<c>docker cp</c>), left out and emptied as
/// <see cref="LowLevelBaseBackup.Classify"/> says, put into the standby's container, then the <c>backup_label</c> and
/// the marker that <c>deploy/compose/replica-entrypoint.sh</c> (<c>BASE_BACKUP=external</c>) waits for before it writes
/// <c>standby.signal</c> and <c>primary_conninfo</c> and starts the server.
/// </summary>
internal static class DockerBaseBackup
{
    /// <summary>PGDATA of the postgres images.</summary>
    internal const string DataDirectory = "/var/lib/postgresql/data";

    /// <summary>Created last, in <see cref="DataDirectory"/>: the replica entry point's signal that the copy is complete.</summary>
    internal const string DoneMarker = "orleanslsn-base-backup.done";

    private const string ArchiveParent = "/var/lib/postgresql";
    private const string WalFolder = "pg_wal";

    /// <summary>Copies the running primary into the (running, waiting) standby container.</summary>
    public static async Task CopyAsync(
        DockerClient docker, string primaryConnectionString, string primaryContainerId, string standbyContainerId, string label, CancellationToken cancellationToken)
    {
        string labelFile = await LowLevelBaseBackup.RunAsync(
            primaryConnectionString,
            label,
            async token =>
            {
                ContainerArchiveResponse archive = await docker.Containers.GetArchiveFromContainerAsync(
                    primaryContainerId, new ContainerPathStatParameters { Path = DataDirectory }, statOnly: false, token);
                // Read whole before it is parsed: TarReader's exact reads on Docker.DotNet's chunked response stream end
                // early (EndOfStreamException, measured), while a plain copy of the same stream is complete.
                using var whole = new MemoryStream();
                await using (Stream source = archive.Stream ?? throw new InvalidOperationException($"docker cp of {DataDirectory} from the primary returned no archive."))
                {
                    await source.CopyToAsync(whole, token);
                }

                whole.Position = 0;
                using var filtered = new MemoryStream();
                await FilterAsync(whole, filtered, token);

                filtered.Position = 0;
                await docker.Containers.ExtractArchiveToContainerAsync(
                    standbyContainerId, new CopyToContainerParameters { Path = ArchiveParent }, filtered, token);
            },
            cancellationToken);

        // One archive, extracted in order: the marker exists only once backup_label is complete.
        using var last = new MemoryStream();
        await using (var writer = new TarWriter(last, TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(File("backup_label", labelFile), cancellationToken);
            await writer.WriteEntryAsync(File(DoneMarker, ""), cancellationToken);
        }

        last.Position = 0;
        await docker.Containers.ExtractArchiveToContainerAsync(
            standbyContainerId, new CopyToContainerParameters { Path = ArchiveParent }, last, cancellationToken);
    }

    /// <summary>
    /// Whether the archive entry <paramref name="name"/> (<c>data/...</c>: the archive's root is the data folder itself)
    /// belongs in the copy.
    /// </summary>
    internal static bool Keep(string name, bool isDirectory)
    {
        string[] parts = name.TrimEnd('/').Split('/');
        if (parts.Length == 1)
        {
            return true;
        }

        if (parts.Skip(1).Any(LowLevelBaseBackup.IsTemporary))
        {
            return false;
        }

        return LowLevelBaseBackup.Classify(parts[1], isDirectory || parts.Length > 2) switch
        {
            DataDirectoryEntry.Skip => false,
            DataDirectoryEntry.CreateEmpty => parts.Length == 2 ||
                (isDirectory && parts.Length == 3 && parts[1] == WalFolder && parts[2] == LowLevelBaseBackup.WalArchiveStatusFolder),
            _ => true,
        };
    }

    private static async Task FilterAsync(Stream source, Stream target, CancellationToken cancellationToken)
    {
        await using var reader = new TarReader(source, leaveOpen: true);
        await using var writer = new TarWriter(target, TarEntryFormat.Pax, leaveOpen: true);
        while (await reader.GetNextEntryAsync(copyData: false, cancellationToken) is { } entry)
        {
            if (Keep(entry.Name, entry.EntryType == TarEntryType.Directory))
            {
                await writer.WriteEntryAsync(entry, cancellationToken);
            }
        }
    }

    private static PaxTarEntry File(string name, string contents) => new(TarEntryType.RegularFile, $"data/{name}")
    {
        Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        DataStream = new MemoryStream(Encoding.UTF8.GetBytes(contents)),
    };
}
