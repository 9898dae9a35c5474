using Microsoft.Extensions.Options;

namespace OrleansLsn.Client;

/// <summary>
/// What went wrong loading the client's TLS certificates when the client was built; reported with every other problem
/// when the host starts (a client with <c>OrleansLsn:Tls:Mode=Required</c> and no usable certificate does not start).
/// </summary>
internal sealed class TlsLoadFailures(IReadOnlyList<string> failures) : IValidateOptions<OrleansLsnClientOptions>
{
    public ValidateOptionsResult Validate(string? name, OrleansLsnClientOptions options) => ValidateOptionsResult.Fail(failures);
}
