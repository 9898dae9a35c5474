#!/usr/bin/env bash
# A streaming replica of the compose file's primary, for the postgres image (the official one or the local stand-in):
# on first start, `pg_basebackup -R` from $PRIMARY_HOST into an empty PGDATA (the primary's settings and a
# standby.signal come along); then PostgreSQL as a hot standby, its walreceiver named $REPLICA_NAME on the primary
# (pg_stat_replication.application_name). Runs as the postgres user (compose: user: postgres). Arguments are passed to
# postgres (`-c name=value`).
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:?PRIMARY_HOST (host name of the primary) is required}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=postgres}"
: "${REPLICA_NAME:?REPLICA_NAME (application_name of this replica) is required}"
# PGPASSWORD (or a .pgpass) authenticates the replication connection.

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "replica $REPLICA_NAME: base backup from $PRIMARY_HOST:$PRIMARY_PORT"
  # The primary may still be starting when compose's healthcheck passes for the first time: retry for a minute.
  for attempt in $(seq 1 30); do
    if pg_basebackup -d "host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER application_name=$REPLICA_NAME" \
        -D "$PGDATA" -R -X stream -c fast; then
      break
    fi
    [ "$attempt" -lt 30 ] || { echo "replica $REPLICA_NAME: pg_basebackup kept failing" >&2; exit 1; }
    rm -rf "${PGDATA:?}"/* && sleep 2
  done
  chmod 700 "$PGDATA"
  echo "replica $REPLICA_NAME: base backup done"
fi
exec postgres -c "cluster_name=$REPLICA_NAME" "$@"
