using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using OrleansLsn.Hosting;
using OrleansLsn.Silo.Hosting;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>healthcheck</c>: GETs this machine's silo's <c>/healthz</c> and exits 0 on 200, 1 otherwise (a container's
/// HEALTHCHECK, where curl may be missing). The port is the silo's <c>OrleansLsn:HttpPort</c>, read from the same
/// configuration sources as <c>silo</c> (environment variables and arguments).
/// </summary>
internal static class HealthCheckCommand
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    internal static Command Create()
    {
        var command = new Command(
            "healthcheck",
            "Exit 0 if the silo on this machine answers 200 on http://127.0.0.1:<OrleansLsn:HttpPort>/healthz within 3 s, 1 otherwise.")
        {
            TreatUnmatchedTokensAsErrors = false,
        };
        command.SetAction(async (ParseResult result, CancellationToken cancellationToken) =>
        {
            IConfiguration configuration = new ConfigurationBuilder()
                .AddEnvironmentVariables()
                .AddCommandLine([.. result.UnmatchedTokens])
                .Build();
            var options = new SiloHostOptions();
            configuration.GetSection(OrleansLsnOptions.SectionName).Bind(options);
            if (options.HttpPort <= 0)
            {
                await Console.Error.WriteLineAsync("OrleansLsn:HttpPort is 0: the silo serves no /healthz to check.");
                return 1;
            }

            var url = new Uri(string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{options.HttpPort}/healthz"));
            using var http = new HttpClient { Timeout = Timeout };
            try
            {
                using HttpResponseMessage response = await http.GetAsync(url, cancellationToken);
                Console.WriteLine($"{url}: {(int)response.StatusCode} {response.StatusCode}");
                return response.IsSuccessStatusCode ? 0 : 1;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                await Console.Error.WriteLineAsync($"{url}: {e.GetType().Name}: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
