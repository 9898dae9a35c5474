using System.CommandLine;
using OrleansLsn.Silo.Local;

namespace OrleansLsn.Silo;

/// <summary>
/// <c>dev-certificates</c>: writes a throw-away CA and certificates signed by it (PEM) into a folder, for local and
/// compose deployments that keep TLS on. Not for production: use your own CA there.
/// </summary>
internal static class CertificatesCommand
{
    internal static Command Create()
    {
        var output = new Option<string>("--out") { Description = "Folder to write ca.crt and NAME.crt / NAME.key into.", Required = true };
        var names = new Option<string[]>("--name") { Description = "A node to issue a certificate for (repeatable).", DefaultValueFactory = _ => ["silo", "client"], AllowMultipleArgumentsPerToken = true };
        var keep = new Option<bool>("--keep-existing") { Description = "Do nothing if the folder already holds ca.crt (idempotent start-up of a compose file)." };
        var command = new Command("dev-certificates", "Write a throw-away CA and PEM certificates (server and client auth, SAN localhost/127.0.0.1/NAME) into a folder.")
        {
            output, names, keep,
        };
        command.SetAction((ParseResult result) =>
        {
            string folder = result.GetValue(output)!;
            string[] nodes = result.GetValue(names)!;
            if (nodes.Length == 0 || nodes.Any(n => n.Length == 0 || n.Length > 64 || !n.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
            {
                Console.Error.WriteLine("--name values must be 1 to 64 letters, digits, '-', '_' or '.'.");
                return 2;
            }

            if (result.GetValue(keep) && File.Exists(Path.Combine(folder, "ca.crt")))
            {
                Console.WriteLine($"{folder} already holds a CA; nothing written.");
                return 0;
            }

            using DevCertificates certificates = DevCertificates.Create(folder, nodes);
            Console.WriteLine($"wrote {certificates.CaCertificatePath} and certificates for {string.Join(", ", nodes)} into {folder}");
            return 0;
        });
        return command;
    }
}
