#!/bin/sh
# The `temporal-schema` one-shot of docker-compose.yml (image temporalio/admin-tools): creates
# Temporal's databases in the compose PostgreSQL and brings both schemas to the version this
# admin-tools release ships. Safe to run on every `up`: an existing database is kept and only the
# schema versions it lacks are applied (as Temporal's own compose setup does).
set -eu

: "${POSTGRES_SEEDS:?POSTGRES_SEEDS is required}"
: "${POSTGRES_USER:?POSTGRES_USER is required}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
port="${DB_PORT:-5432}"
schema_dir=/etc/temporal/schema/postgresql/v12

tries=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$port"; do
  tries=$((tries + 1))
  if [ "$tries" -ge 60 ]; then
    echo "PostgreSQL at $POSTGRES_SEEDS:$port did not answer" >&2
    exit 1
  fi
  echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$port"
  sleep 2
done

# temporal-sql-tool reads the password from SQL_PASSWORD.
setup() {
  db="$1"
  kind="$2"
  echo "schema of $db ($kind)"
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" --db "$db" create
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" --db "$db" setup-schema -v 0.0
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" --db "$db" \
    update-schema -d "$schema_dir/$kind/versioned"
}

setup "${DBNAME:-temporal}" temporal
setup "${VISIBILITY_DBNAME:-temporal_visibility}" visibility
echo "Temporal schema ready in ${DBNAME:-temporal} and ${VISIBILITY_DBNAME:-temporal_visibility}"
