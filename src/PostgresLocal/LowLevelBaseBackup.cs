using Npgsql;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// A base backup without <c>pg_basebackup</c> (the binaries of <c>deploy/postgres-binaries.sh</c> do not ship it): the
/// documented low-level API. One session runs <c>pg_backup_start</c>, the data folder is copied file by file while the
/// primary keeps running, and <c>pg_backup_stop</c> in the same session returns the <c>backup_label</c> the copy needs.
/// The copy has no WAL: the standby streams it from the primary (kept by <c>wal_keep_size</c>), as
/// <c>pg_basebackup -X none</c> would.
/// </summary>
internal static class LowLevelBaseBackup
{
    /// <summary>Top-level entries that are not copied at all (the server's own run-time files and recovery markers).</summary>
    private static readonly HashSet<string> SkippedFiles = new(StringComparer.Ordinal)
    {
        "postmaster.pid", "postmaster.opts", "backup_label", "backup_label.old", "tablespace_map", "standby.signal", "recovery.signal",
    };

    /// <summary>
    /// Top-level folders copied empty: their contents are rebuilt at start or, for <c>pg_wal</c>, streamed (the list the
    /// PostgreSQL documentation gives for a low-level backup).
    /// </summary>
    private static readonly HashSet<string> EmptiedFolders = new(StringComparer.Ordinal)
    {
        "pg_wal", "pg_replslot", "pg_dynshmem", "pg_notify", "pg_serial", "pg_snapshots", "pg_stat_tmp", "pg_subtrans",
    };

    /// <summary>The one subfolder of <c>pg_wal</c> a copy recreates (empty).</summary>
    internal const string WalArchiveStatusFolder = "archive_status";

    /// <summary>Copies the running primary's data folder into <paramref name="targetDataDirectory"/> (created, mode 0700).</summary>
    internal static async Task TakeAsync(
        LocalPostgresServer primary, string targetDataDirectory, string label, TimeSpan toolTimeout, CancellationToken cancellationToken)
    {
        string labelFile = await RunAsync(
            primary.ConnectionString,
            label,
            token => Task.Run(() => CopyDataDirectory(primary.DataDirectory, targetDataDirectory), token),
            cancellationToken).ConfigureAwait(false);

        await File.WriteAllTextAsync(Path.Combine(targetDataDirectory, "backup_label"), labelFile, cancellationToken).ConfigureAwait(false);
        if (ProcessRunner.RunningAsRoot)
        {
            // Copied by root: hand the folder to the user the server runs as.
            await ProcessRunner.RunAsync(
                "chown", ["-R", $"{ProcessRunner.PostgresOsUser}:", targetDataDirectory], asPostgresUser: false, toolTimeout, cancellationToken)
                .ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The backup itself, whatever does the copy (a file copy here, a tar stream between containers in the test
    /// fixture): <c>pg_backup_start</c> on a session of the primary, <paramref name="copyDataDirectory"/>, then
    /// <c>pg_backup_stop</c> on the same session. Returns the <c>backup_label</c> contents the copy must get.
    /// </summary>
    /// <remarks>The copy follows <see cref="Classify"/> and <see cref="IsTemporary"/>.</remarks>
    internal static async Task<string> RunAsync(
        string primaryConnectionString, string label, Func<CancellationToken, Task> copyDataDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(copyDataDirectory);
        await using var conn = new NpgsqlConnection(primaryConnectionString);
        await conn.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using (var start = new NpgsqlCommand("SELECT pg_backup_start(@label, true)", conn))
        {
            start.Parameters.AddWithValue("label", label);
            await start.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // A failure before pg_backup_stop ends the session, which aborts the backup on the primary.
        await copyDataDirectory(cancellationToken).ConfigureAwait(false);

        await using var stop = new NpgsqlCommand("SELECT labelfile FROM pg_backup_stop(false)", conn);
        return (string?)await stop.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new LocalPostgresException("pg_backup_stop returned no backup label.");
    }

    /// <summary>What a copy does with the entry <paramref name="name"/> at the top of the data folder.</summary>
    internal static DataDirectoryEntry Classify(string name, bool isDirectory) =>
        isDirectory
            ? (EmptiedFolders.Contains(name) ? DataDirectoryEntry.CreateEmpty : DataDirectoryEntry.Copy)
            : (SkippedFiles.Contains(name) ? DataDirectoryEntry.Skip : DataDirectoryEntry.Copy);

    /// <summary>Whether an entry at any depth is a temporary file or folder, which a copy leaves out.</summary>
    internal static bool IsTemporary(string name) => name.StartsWith("pgsql_tmp", StringComparison.Ordinal);

    private static void CopyDataDirectory(string source, string target)
    {
        CreateFolder(target);
        foreach (string entry in Directory.EnumerateFileSystemEntries(source))
        {
            string name = Path.GetFileName(entry);
            string to = Path.Combine(target, name);
            bool isDirectory = Directory.Exists(entry);
            switch (Classify(name, isDirectory))
            {
                case DataDirectoryEntry.CreateEmpty:
                    CreateFolder(to);
                    if (name == "pg_wal")
                    {
                        CreateFolder(Path.Combine(to, WalArchiveStatusFolder));
                    }

                    break;
                case DataDirectoryEntry.Copy when isDirectory:
                    CopyTree(entry, to);
                    break;
                case DataDirectoryEntry.Copy:
                    CopyFile(entry, to);
                    break;
            }
        }
    }

    private static void CopyTree(string source, string target)
    {
        CreateFolder(target);
        IEnumerable<string> entries;
        try
        {
            entries = Directory.EnumerateFileSystemEntries(source).ToList();
        }
        catch (DirectoryNotFoundException)
        {
            // Dropped while we copy (a database's folder); WAL replay drops it on the standby too.
            return;
        }

        foreach (string entry in entries)
        {
            string name = Path.GetFileName(entry);
            if (IsTemporary(name))
            {
                continue;
            }

            if (Directory.Exists(entry))
            {
                CopyTree(entry, Path.Combine(target, name));
            }
            else
            {
                CopyFile(entry, Path.Combine(target, name));
            }
        }
    }

    private static void CreateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("Local PostgreSQL clusters are supported on Linux and macOS.");
        }

        // PostgreSQL refuses a data folder others can read.
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static void CopyFile(string source, string target)
    {
        try
        {
            // A file written during the copy may be torn: replay from the backup's start point repairs it (the
            // primary forces full-page writes while a backup runs).
            File.Copy(source, target, overwrite: false);
        }
        catch (FileNotFoundException)
        {
            // Removed since it was listed (a relation file truncated or dropped); replay does the same.
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
