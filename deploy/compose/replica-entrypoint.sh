#!/usr/bin/env bash
# A streaming replica of the compose file's primary, for the postgres image (the official one or the local stand-in),
# then PostgreSQL as a hot standby, its walreceiver named $REPLICA_NAME on the primary
# (pg_stat_replication.application_name). Arguments are passed to postgres (`-c name=value`).
# How the empty PGDATA is filled on first start (BASE_BACKUP):
#   pg_basebackup (default)  `pg_basebackup -R` from $PRIMARY_HOST (the primary's settings and a standby.signal come
#                            along). Runs as the postgres user (compose: user: postgres).
#   external                 someone else copies the data folder in while this waits: a low-level base backup
#                            (pg_backup_start on the primary, its data folder, pg_backup_stop's backup_label), for
#                            images without a pg_basebackup that speaks to the server (deploy/local-images.sh --pg N).
#                            The copier creates $PGDATA/orleanslsn-base-backup.done last; this script then writes
#                            standby.signal and primary_conninfo (no password: the walreceiver reads PGPASSWORD from the
#                            environment) and renames the marker to orleanslsn-base-backup.used (later starts skip all
#                            this). Started as root, it hands PGDATA to postgres and runs the server as postgres.
#                            BASE_BACKUP_TIMEOUT (seconds, default 300) bounds the wait.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:?PRIMARY_HOST (host name of the primary) is required}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_USER:=postgres}"
: "${REPLICA_NAME:?REPLICA_NAME (application_name of this replica) is required}"
: "${BASE_BACKUP:=pg_basebackup}"
# PGPASSWORD (or a .pgpass) authenticates the replication connection.

case "$BASE_BACKUP" in
  pg_basebackup)
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
    ;;
  external)
    done_marker="$PGDATA/orleanslsn-base-backup.done"
    used_marker="$PGDATA/orleanslsn-base-backup.used"
    if [ ! -e "$used_marker" ]; then
      echo "replica $REPLICA_NAME: waiting for an external base backup of $PRIMARY_HOST in $PGDATA"
      deadline=$((SECONDS + ${BASE_BACKUP_TIMEOUT:-300}))
      until [ -e "$done_marker" ]; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "replica $REPLICA_NAME: no base backup arrived within ${BASE_BACKUP_TIMEOUT:-300} s" >&2; exit 1; }
        sleep 0.1
      done
      [ -s "$PGDATA/PG_VERSION" ] && [ -s "$PGDATA/backup_label" ] ||
        { echo "replica $REPLICA_NAME: the base backup in $PGDATA has no PG_VERSION or backup_label" >&2; exit 1; }
      : > "$PGDATA/standby.signal"
      printf "\n# replica-entrypoint.sh (BASE_BACKUP=external)\nprimary_conninfo = 'host=%s port=%s user=%s application_name=%s'\n" \
        "$PRIMARY_HOST" "$PRIMARY_PORT" "$REPLICATION_USER" "$REPLICA_NAME" >> "$PGDATA/postgresql.auto.conf"
      if [ "$(id -u)" = 0 ]; then
        chown -R postgres:postgres "$PGDATA"
      fi
      chmod 700 "$PGDATA"
      mv "$done_marker" "$used_marker"
      echo "replica $REPLICA_NAME: base backup in place"
    fi
    if [ "$(id -u)" = 0 ]; then
      mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql
      exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -c "cluster_name=$REPLICA_NAME" "$@"
    fi
    ;;
  *) echo "replica $REPLICA_NAME: BASE_BACKUP='$BASE_BACKUP' is neither pg_basebackup nor external" >&2; exit 2 ;;
esac
exec postgres -c "cluster_name=$REPLICA_NAME" "$@"
