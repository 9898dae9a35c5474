using System.Globalization;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace OrleansLsn.Tests.Infrastructure;

/// <summary>
/// The labels every container and network of the Docker backend carries, and the sweep that removes what a dead run
/// left (the counterpart of the local cluster's reaper and sweep, without a reaper container): the owner label names
/// the host, the PID and the PID's start time (field 22 of <c>/proc/PID/stat</c>), so a recycled PID is not taken for
/// the owner. Containers of a live run, or of another host sharing the engine, are left alone.
/// </summary>
public static class DockerLeftovers
{
    /// <summary>On everything the backend creates.</summary>
    public const string MarkerLabel = "org.orleanslsn.tests";

    /// <summary><c>HOST/PID/START</c> of the process that created the resource.</summary>
    public const string OwnerLabel = "org.orleanslsn.tests.owner";

    /// <summary>The cluster's id, shared by its network and containers.</summary>
    public const string ClusterLabel = "org.orleanslsn.tests.cluster";

    /// <summary>The labels of a resource of cluster <paramref name="clusterId"/> owned by this process.</summary>
    public static IReadOnlyDictionary<string, string> Labels(string clusterId) => new Dictionary<string, string>
    {
        [MarkerLabel] = "1",
        [OwnerLabel] = CurrentOwner,
        [ClusterLabel] = clusterId,
    };

    public static string CurrentOwner { get; } = Owner(Environment.ProcessId, ReadStartTicks(Environment.ProcessId) ?? 0);

    internal static string Owner(int pid, long startTicks) =>
        string.Create(CultureInfo.InvariantCulture, $"{Environment.MachineName}/{pid}/{startTicks}");

    /// <summary>Whether <paramref name="owner"/> (an <see cref="OwnerLabel"/> value) is a live process of this host, or of another host (not ours to judge).</summary>
    public static bool IsAliveOrForeign(string? owner)
    {
        string[] parts = (owner ?? "").Split('/');
        if (parts.Length != 3 ||
            !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ||
            !long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long start))
        {
            return false; // unreadable: ours (the marker label says so), and no process can claim it
        }

        return parts[0] != Environment.MachineName || ReadStartTicks(pid) == start;
    }

    /// <summary>Removes the containers (with their anonymous volumes) and then the networks of owners that are gone; returns what it removed.</summary>
    public static async Task<IReadOnlyList<string>> SweepAsync(DockerClient docker, CancellationToken cancellationToken)
    {
        var removed = new List<string>();
        IList<ContainerListResponse> containers = await docker.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = LabelFilter(MarkerLabel) }, cancellationToken);
        foreach (ContainerListResponse container in containers)
        {
            if (IsAliveOrForeign(container.Labels.TryGetValue(OwnerLabel, out string? owner) ? owner : null))
            {
                continue;
            }

            try
            {
                await docker.Containers.RemoveContainerAsync(container.ID, new ContainerRemoveParameters { Force = true, RemoveVolumes = true }, cancellationToken);
                removed.Add($"container {string.Join(",", container.Names)}");
            }
            catch (DockerContainerNotFoundException)
            {
                // Removed by someone else meanwhile.
            }
        }

        IList<NetworkResponse> networks = await docker.Networks.ListNetworksAsync(new NetworksListParameters { Filters = LabelFilter(MarkerLabel) }, cancellationToken);
        foreach (NetworkResponse network in networks)
        {
            if (IsAliveOrForeign(network.Labels.TryGetValue(OwnerLabel, out string? owner) ? owner : null))
            {
                continue;
            }

            try
            {
                await docker.Networks.DeleteNetworkAsync(network.ID, cancellationToken);
                removed.Add($"network {network.Name}");
            }
            catch (DockerApiException)
            {
                // Gone already, or still in use by a container being removed: the next sweep gets it.
            }
        }

        return removed;
    }

    /// <summary>Containers and networks of cluster <paramref name="clusterId"/> that still exist.</summary>
    public static async Task<IReadOnlyList<string>> FindAsync(DockerClient docker, string clusterId, CancellationToken cancellationToken)
    {
        string filter = $"{ClusterLabel}={clusterId}";
        IList<ContainerListResponse> containers = await docker.Containers.ListContainersAsync(
            new ContainersListParameters { All = true, Filters = LabelFilter(filter) }, cancellationToken);
        IList<NetworkResponse> networks = await docker.Networks.ListNetworksAsync(new NetworksListParameters { Filters = LabelFilter(filter) }, cancellationToken);
        return
        [
            .. containers.Select(c => $"container {string.Join(",", c.Names)} ({c.State})"),
            .. networks.Select(n => $"network {n.Name}"),
        ];
    }

    private static Dictionary<string, IDictionary<string, bool>> LabelFilter(string label) =>
        new() { ["label"] = new Dictionary<string, bool> { [label] = true } };

    internal static long? ReadStartTicks(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            string[] rest = stat[(close + 2)..].Split(' ');
            return long.Parse(rest[19], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
