using System.CommandLine;
using OrleansLsn.PostgresLocal;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>local-postgres</c>: starts a throw-away primary and its hot standbys (one, or one per <c>--standby NAME</c>) and
/// keeps them until Ctrl-C.
/// </summary>
internal static class LocalPostgresCommand
{
    internal static Command Create()
    {
        var standbys = new Option<string[]>("--standby")
        {
            Description = $"Name of a hot standby to start, e.g. one per region (repeat for several: --standby eu-west --standby us-east). Default: one named '{LocalPostgresOptions.DefaultStandbyName}'.",
            Arity = ArgumentArity.OneOrMore,
        };
        var command = new Command("local-postgres", "Start a throw-away local PostgreSQL primary and hot standbys, print their connection strings, and keep them until Ctrl-C (or until this process dies: nothing is left behind).")
        {
            standbys,
        };
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            var options = new LocalPostgresOptions { Name = "local" };
            string[] names = result.GetValue(standbys) ?? [];
            if (names.Length > 0)
            {
                options.StandbyNames = names;
            }

            LocalPostgresCluster cluster;
            try
            {
                cluster = await LocalPostgresCluster.StartAsync(options, cancellationToken);
            }
            catch (ArgumentException ex)
            {
                Console.Error.WriteLine(ex.Message);
                return 2;
            }

            await using (cluster)
            {
                Console.WriteLine($"READY {cluster.Directory}");
                Console.WriteLine($"primary: {cluster.Primary.ConnectionString}");
                foreach (LocalPostgresServer standby in cluster.Standbys)
                {
                    Console.WriteLine($"{standby.Name}: {standby.ConnectionString}");
                }

                Console.Out.Flush();
                try
                {
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    // Ctrl-C: dispose stops every server.
                }
            }

            return 0;
        });
        return command;
    }
}
