using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using OrleansLsn.Client;

namespace OrleansLsn.Silo.Local;

/// <summary>
/// A client of a <see cref="LocalDeployment"/> through the client library: gateways from the membership table in
/// PostgreSQL, mutual TLS with the deployment's client certificate, exactly as an application would configure it.
/// </summary>
public static class LocalClient
{
    /// <summary>Connects with <paramref name="settings"/> (the <c>OrleansLsn</c> section), logging at <paramref name="logLevel"/>.</summary>
    public static Task<OrleansLsnClient> ConnectAsync(IReadOnlyDictionary<string, string?> settings, CancellationToken cancellationToken, LogLevel logLevel = LogLevel.Warning)
    {
        IConfiguration configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return OrleansLsnClient.ConnectAsync(
            o => configuration.GetSection(OrleansLsnClientOptions.SectionName).Bind(o),
            host => host.Logging.AddSimpleConsole(c => c.SingleLine = true).SetMinimumLevel(logLevel),
            cancellationToken);
    }
}
