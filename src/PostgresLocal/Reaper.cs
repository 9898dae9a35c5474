using System.Diagnostics;

namespace OrleansLsn.PostgresLocal;

/// <summary>
/// A small detached shell process that stops every server of a cluster and deletes the cluster folder when the owning process goes
/// away for any reason, including SIGKILL: it blocks reading a pipe whose only writer is this process, and the kernel
/// closes that pipe when this process dies. It runs in its own session so a terminal's Ctrl-C does not kill it first.
/// </summary>
internal sealed class Reaper : IDisposable
{
    private const string Script = """
        exec 1>/dev/null 2>&1
        cat >/dev/null
        root="$1"; pgctl="$2"
        stop() {
          if [ -f "$1/postmaster.pid" ]; then
            if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$pgctl" -D "$1" -m immediate -w -t 30 stop
            else "$pgctl" -D "$1" -m immediate -w -t 30 stop; fi
          fi
        }
        for d in "$root"/*/data; do
          [ "$d" = "$root/primary/data" ] || stop "$d"
        done
        stop "$root/primary/data"
        rm -rf "$root"
        """;

    private readonly Process _process;

    private Reaper(Process process) => _process = process;

    /// <summary>
    /// Starts the reaper of <paramref name="clusterDirectory"/>. When it runs it stops every server it finds then, that is
    /// every <c>&lt;cluster folder&gt;/*/data</c> with a <c>postmaster.pid</c> (standbys first, the primary last, like
    /// <see cref="LocalPostgresCluster.ServerDataDirectoriesWithPid"/>), so servers created after this call are covered.
    /// </summary>
    internal static Reaper Start(string clusterDirectory, string pgCtl)
    {
        var psi = new ProcessStartInfo("setsid")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        psi.ArgumentList.Add("orleanslsn-pg-reaper");
        psi.ArgumentList.Add(clusterDirectory);
        psi.ArgumentList.Add(pgCtl);

        Process process = Process.Start(psi) ?? throw new LocalPostgresException("Could not start the cleanup process (setsid sh).");
        return new Reaper(process);
    }

    /// <summary>Lets the reaper run now: used after an orderly shutdown, when it finds nothing left to do.</summary>
    public void Dispose()
    {
        try
        {
            _process.StandardInput.Close();
            _process.WaitForExit(TimeSpan.FromSeconds(30));
        }
        catch (InvalidOperationException)
        {
        }
        catch (IOException)
        {
        }

        _process.Dispose();
    }
}
