using OpenTelemetry.Exporter;

namespace OrleansLsn.Silo.Hosting;

/// <summary>
/// Traces exported by the silo executable over OTLP (section <c>OrleansLsn:Tracing</c>). Off unless an endpoint is
/// configured here or through OpenTelemetry's standard <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (or
/// <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>) environment variable: without one no span is even created.
/// </summary>
public sealed class SiloTracingOptions
{
    /// <summary>
    /// The OTLP receiver (a collector, an agent), as <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> gives it: the base address, to
    /// which <c>/v1/traces</c> is appended for <see cref="OtlpExportProtocol.HttpProtobuf"/>. Default none (then the
    /// standard environment variables decide, with all their options).
    /// </summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>OTLP over gRPC (<c>Grpc</c>, port 4317 by convention) or HTTP (<c>HttpProtobuf</c>, 4318). Default <c>Grpc</c>.</summary>
    public OtlpExportProtocol OtlpProtocol { get; set; } = OtlpExportProtocol.Grpc;

    /// <summary>
    /// The share of the silo's own root operations (a tracker's polls, pushes to client views, membership, calls from
    /// untraced callers) that start a trace, 0 to 1. Spans of a trace a caller started are recorded as the caller
    /// decided, whatever this is. Default 0: a silo starts no trace of its own.
    /// </summary>
    public double RootSampleRatio { get; set; }

    /// <summary>Whether traces are exported: an endpoint here or in the standard environment variables (in <paramref name="configuration"/>).</summary>
    internal bool IsEnabled(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        !string.IsNullOrWhiteSpace(OtlpEndpoint)
        || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])
        || !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]);

    /// <summary>The exporter's endpoint for <see cref="OtlpEndpoint"/>: with HTTP the traces path is appended, as the standard variable has it.</summary>
    internal Uri? ExportEndpoint()
    {
        if (string.IsNullOrWhiteSpace(OtlpEndpoint) || !Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out Uri? endpoint))
        {
            return null;
        }

        return OtlpProtocol == OtlpExportProtocol.HttpProtobuf
            ? new Uri(endpoint.AbsoluteUri.TrimEnd('/') + "/v1/traces")
            : endpoint;
    }
}
