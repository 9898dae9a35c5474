-- OrleansLsn: Orleans cluster membership (Microsoft.Orleans.Clustering.AdoNet, invariant "Npgsql") in PostgreSQL.
--
-- Applied by OrleansLsn.Membership.PostgresMembershipSchema.ApplyAsync, in one transaction that first takes
-- pg_advisory_xact_lock, so silos starting together apply it one after another. Every statement is idempotent: a
-- second run creates nothing and rewrites no query row. Written for this project from the provider's contract (the
-- parameters it binds, the columns it reads and how it reads the result); it is not Orleans' own script.
--
-- The contract in short:
-- * the provider reads "SELECT QueryKey, QueryText FROM OrleansQuery" at start and fails if a required key is missing;
-- * parameters are bound by name (@DeploymentId, @Address, ...), every value typed (Address as text, ports, generation,
--   status and version as integer, times as UTC DateTime, SuspectTimes as text or NULL);
-- * InsertMembershipVersionKey, InsertMembershipKey and UpdateMembershipKey must return exactly one row with one
--   column read as a boolean: false means "not done" (the silo re-reads the table and retries), an error means a
--   broken table;
-- * the read queries return one row per silo, or a single row with NULL silo columns, and every row carries the
--   deployment's Version: a deployment without a version row returns no row at all.
--
-- Compare-and-swap: every change of a silo row is one statement that first locks the deployment's version row, but
-- only if its Version still equals the version the caller read (@Version). The silo row is changed only from that
-- locked row, and the version is bumped only from the changed silo row. A stale @Version locks nothing, so nothing
-- changes and the statement answers false; a duplicate silo inserts nothing, so the version is not bumped either.
-- Two writers racing with the same @Version queue on the row lock; the loser re-checks the bumped Version, finds it
-- changed and does nothing. Both or neither, with no reliance on ASSERT, exceptions or multi-statement batches.

-- The schema everything below goes to, pinned for this transaction with pg_temp last, so that the gateway function
-- (SET search_path FROM CURRENT) resolves its table in this schema only, whatever its caller's search_path. The
-- script is applied in one transaction (psql: -1).
SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true) AS pinned_search_path;

CREATE TABLE IF NOT EXISTS OrleansQuery
(
    QueryKey  varchar(64) NOT NULL PRIMARY KEY,
    QueryText text        NOT NULL
);

-- One row per deployment (Orleans' cluster id). Version grows by one with every silo row inserted or updated.
CREATE TABLE IF NOT EXISTS orleanslsn_membership_deployment
(
    deployment_id text        NOT NULL PRIMARY KEY,
    version       integer     NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    changed_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per silo incarnation (address, port, generation). Status holds Orleans' SiloStatus (3 Active, 6 Dead).
CREATE TABLE IF NOT EXISTS orleanslsn_membership_silo
(
    deployment_id   text        NOT NULL REFERENCES orleanslsn_membership_deployment (deployment_id) ON DELETE CASCADE,
    address         text        NOT NULL,
    port            integer     NOT NULL,
    generation      integer     NOT NULL,
    silo_name       text        NOT NULL,
    host_name       text        NOT NULL,
    status          integer     NOT NULL,
    proxy_port      integer     NOT NULL DEFAULT 0,
    suspect_times   text        NULL,
    start_time      timestamptz NOT NULL,
    i_am_alive_time timestamptz NOT NULL,
    PRIMARY KEY (deployment_id, address, port, generation)
);

-- The gateway list for clients (GatewaysQueryKey). SECURITY DEFINER: it runs with its owner's rights, so a client role
-- needs EXECUTE on it and SELECT on OrleansQuery only, no right on the membership tables. Nobody else may call it
-- (database-roles grants EXECUTE to the client and silo roles).
CREATE OR REPLACE FUNCTION orleanslsn_membership_gateways(deployment text, silo_status integer)
RETURNS TABLE ("Address" text, "ProxyPort" integer, "Generation" integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path FROM CURRENT
AS $function$
SELECT address, proxy_port, generation
FROM orleanslsn_membership_silo
WHERE deployment_id = $1 AND status = $2 AND proxy_port > 0
$function$;

REVOKE ALL ON FUNCTION orleanslsn_membership_gateways(text, integer) FROM PUBLIC;

-- The queries the provider runs. Other Orleans ADO.NET providers may keep their own rows in OrleansQuery; only these
-- keys are written, and a row is rewritten only when its text differs.
INSERT INTO OrleansQuery (QueryKey, QueryText)
VALUES
(
    'InsertMembershipVersionKey',
    $query$
WITH created AS
(
    INSERT INTO orleanslsn_membership_deployment (deployment_id)
    VALUES (@DeploymentId)
    ON CONFLICT (deployment_id) DO NOTHING
    RETURNING deployment_id
)
SELECT EXISTS (SELECT 1 FROM created) AS "Created"
$query$
),
(
    'InsertMembershipKey',
    $query$
WITH expected AS MATERIALIZED
(
    SELECT deployment_id
    FROM orleanslsn_membership_deployment
    WHERE deployment_id = @DeploymentId AND version = @Version
    FOR UPDATE
),
added AS
(
    INSERT INTO orleanslsn_membership_silo
        (deployment_id, address, port, generation, silo_name, host_name, status, proxy_port, suspect_times,
         start_time, i_am_alive_time)
    SELECT expected.deployment_id, @Address, @Port, @Generation, @SiloName, @HostName, @Status,
           coalesce(@ProxyPort, 0), NULL, @StartTime, @IAmAliveTime
    FROM expected
    ON CONFLICT (deployment_id, address, port, generation) DO NOTHING
    RETURNING deployment_id
),
bumped AS
(
    UPDATE orleanslsn_membership_deployment AS d
    SET version = d.version + 1, changed_at = now()
    FROM added
    WHERE d.deployment_id = added.deployment_id
    RETURNING d.version
)
SELECT EXISTS (SELECT 1 FROM bumped) AS "Inserted"
$query$
),
(
    'UpdateMembershipKey',
    $query$
WITH expected AS MATERIALIZED
(
    SELECT deployment_id
    FROM orleanslsn_membership_deployment
    WHERE deployment_id = @DeploymentId AND version = @Version
    FOR UPDATE
),
changed AS
(
    UPDATE orleanslsn_membership_silo AS s
    SET status = @Status, suspect_times = @SuspectTimes, i_am_alive_time = @IAmAliveTime
    FROM expected
    WHERE s.deployment_id = expected.deployment_id
      AND s.address = @Address AND s.port = @Port AND s.generation = @Generation
    RETURNING s.deployment_id
),
bumped AS
(
    UPDATE orleanslsn_membership_deployment AS d
    SET version = d.version + 1, changed_at = now()
    FROM changed
    WHERE d.deployment_id = changed.deployment_id
    RETURNING d.version
)
SELECT EXISTS (SELECT 1 FROM bumped) AS "Updated"
$query$
),
(
    'UpdateIAmAlivetimeKey',
    $query$
UPDATE orleanslsn_membership_silo
SET i_am_alive_time = @IAmAliveTime
WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
$query$
),
(
    'MembershipReadRowKey',
    $query$
SELECT d.version AS "Version",
       s.address AS "Address", s.port AS "Port", s.generation AS "Generation",
       s.silo_name AS "SiloName", s.host_name AS "HostName", s.status AS "Status", s.proxy_port AS "ProxyPort",
       s.suspect_times AS "SuspectTimes", s.start_time AS "StartTime", s.i_am_alive_time AS "IAmAliveTime"
FROM orleanslsn_membership_deployment AS d
LEFT JOIN orleanslsn_membership_silo AS s
       ON s.deployment_id = d.deployment_id
      AND s.address = @Address AND s.port = @Port AND s.generation = @Generation
WHERE d.deployment_id = @DeploymentId
$query$
),
(
    'MembershipReadAllKey',
    $query$
SELECT d.version AS "Version",
       s.address AS "Address", s.port AS "Port", s.generation AS "Generation",
       s.silo_name AS "SiloName", s.host_name AS "HostName", s.status AS "Status", s.proxy_port AS "ProxyPort",
       s.suspect_times AS "SuspectTimes", s.start_time AS "StartTime", s.i_am_alive_time AS "IAmAliveTime"
FROM orleanslsn_membership_deployment AS d
LEFT JOIN orleanslsn_membership_silo AS s ON s.deployment_id = d.deployment_id
WHERE d.deployment_id = @DeploymentId
ORDER BY s.address, s.port, s.generation
$query$
),
(
    'GatewaysQueryKey',
    $query$
SELECT "Address", "ProxyPort", "Generation"
FROM orleanslsn_membership_gateways(@DeploymentId::text, @Status::integer)
$query$
),
(
    'DeleteMembershipTableEntriesKey',
    $query$
DELETE FROM orleanslsn_membership_deployment
WHERE deployment_id = @DeploymentId
$query$
),
(
    'CleanupDefunctSiloEntriesKey',
    $query$
DELETE FROM orleanslsn_membership_silo
WHERE deployment_id = @DeploymentId AND status <> 3 AND i_am_alive_time < @IAmAliveTime
$query$
),
(
    'CleanupDefunctSiloEntryKey',
    $query$
DELETE FROM orleanslsn_membership_silo
WHERE deployment_id = @DeploymentId AND address = @Address AND port = @Port AND generation = @Generation
  AND status = 6
  AND start_time = @StartTime AND i_am_alive_time = @IAmAliveTime
  AND coalesce(suspect_times, '') = coalesce(@SuspectTimes, '')
$query$
)
ON CONFLICT (QueryKey) DO UPDATE
    SET QueryText = EXCLUDED.QueryText
    WHERE OrleansQuery.QueryText IS DISTINCT FROM EXCLUDED.QueryText
RETURNING QueryKey;
