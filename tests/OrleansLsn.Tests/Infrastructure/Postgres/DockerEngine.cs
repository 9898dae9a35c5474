using System.Globalization;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using Docker.DotNet;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// A Docker engine that answered: where it is and which API version it speaks. <see cref="ProbeAsync(TimeSpan)"/> asks the
/// engine's unversioned <c>/version</c> (so an old engine answers too) with a short timeout, never hanging on an engine
/// that does not answer.
/// </summary>
public sealed class DockerEngine
{
    /// <summary>The API version Docker.DotNet asks for when not told otherwise; older engines refuse it.</summary>
    private static readonly Version ClientDefaultApiVersion = new(1, 44);

    private DockerEngine(Uri endpoint, string serverVersion, Version apiVersion)
    {
        Endpoint = endpoint;
        ServerVersion = serverVersion;
        ApiVersion = apiVersion;
    }

    public Uri Endpoint { get; }

    public string ServerVersion { get; }

    public Version ApiVersion { get; }

    /// <summary><c>DOCKER_HOST</c>, or the default Unix socket.</summary>
    public static Uri DefaultEndpoint =>
        new(Environment.GetEnvironmentVariable("DOCKER_HOST") is { Length: > 0 } host ? host : "unix:///var/run/docker.sock");

    /// <summary>Asks the engine at <see cref="DefaultEndpoint"/> for its version; the error says why not otherwise.</summary>
    public static Task<(DockerEngine? Engine, string? Error)> ProbeAsync(TimeSpan timeout) => ProbeAsync(DefaultEndpoint, timeout);

    /// <summary>Asks the engine at <paramref name="endpoint"/> for its version; the error says why not otherwise.</summary>
    public static async Task<(DockerEngine? Engine, string? Error)> ProbeAsync(Uri endpoint, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            using HttpClient http = CreateHttpClient(endpoint);
            VersionResponse? version = await http.GetFromJsonAsync<VersionResponse>("/version", deadline.Token);
            if (version?.ApiVersion is null || !Version.TryParse(version.ApiVersion, out Version? api))
            {
                return (null, $"{endpoint} answered /version without an API version");
            }

            return (new DockerEngine(endpoint, version.Version ?? "?", api), null);
        }
        catch (OperationCanceledException)
        {
            return (null, $"{endpoint} did not answer within {timeout.TotalSeconds:0} s");
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException or NotSupportedException or System.Text.Json.JsonException)
        {
            return (null, $"{endpoint}: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Sets what Testcontainers needs on this kind of machine, unless the environment already says otherwise: the
    /// engine's own API version when it is older than the client's default (Testcontainers asks for 1.44 and an engine
    /// 20.10 refuses it), no Ryuk reaper (its image cannot be pulled everywhere; leftovers are removed by label at the
    /// next start instead, see <see cref="DockerLeftovers"/>), and containers reached on 127.0.0.1.
    /// </summary>
    public void ConfigureTestcontainers()
    {
        if (ApiVersion < ClientDefaultApiVersion)
        {
            SetIfUnset("DOCKER_API_VERSION", ApiVersion.ToString(2));
        }

        SetIfUnset("TESTCONTAINERS_RYUK_DISABLED", "true");
        SetIfUnset("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1");
    }

    /// <summary>A Docker.DotNet client for what Testcontainers does not do (kill, start again, sweep by label).</summary>
    public DockerClient CreateClient() =>
        new DockerClientBuilder().WithEndpoint(Endpoint).WithApiVersion(ApiVersion < ClientDefaultApiVersion ? ApiVersion : ClientDefaultApiVersion).Build();

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"engine {ServerVersion}, API {ApiVersion} at {Endpoint}");

    private static void SetIfUnset(string name, string value)
    {
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable(name)))
        {
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    private static HttpClient CreateHttpClient(Uri endpoint)
    {
        if (endpoint.Scheme == "unix")
        {
            string path = endpoint.LocalPath;
            if (!File.Exists(path))
            {
                throw new IOException($"no socket at {path}");
            }

            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return new HttpClient(handler) { BaseAddress = new Uri("http://docker") };
        }

        if (endpoint.Scheme == "tcp" || endpoint.Scheme == "http")
        {
            return new HttpClient { BaseAddress = new UriBuilder("http", endpoint.Host, endpoint.Port).Uri };
        }

        throw new NotSupportedException($"DOCKER_HOST scheme '{endpoint.Scheme}' is not supported by the test fixture (unix:// or tcp://)");
    }

    private sealed class VersionResponse
    {
        [JsonPropertyName("Version")]
        public string? Version { get; set; }

        [JsonPropertyName("ApiVersion")]
        public string? ApiVersion { get; set; }
    }
}
