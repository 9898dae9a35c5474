#!/usr/bin/env bash
# /docker-entrypoint-initdb.d script of the compose file's primary (runs once, on an empty PGDATA): replication
# connections from the compose network for the replicas' pg_basebackup and walreceivers, and the demo's table.
set -euo pipefail
echo "host replication all all ${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --no-psqlrc <<'SQL'
create table if not exists public.orders (id bigint generated always as identity primary key, region text not null, note text not null, created_at timestamptz not null default now());
SQL
