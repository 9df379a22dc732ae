#!/bin/sh
# Before the metastore starts: wait for its PostgreSQL, then make sure the metastore schema is
# whole or absent. `schematool -initSchema` runs its script statement by statement, outside one
# transaction, so a pod killed during the first start leaves tables without the VERSION row (the
# script's last statement); every later start would then fail on the first existing table,
# forever. Such a half-made schema holds no metadata yet, so it is dropped and made again.
# A schema with a VERSION row is never touched here.
set -eu

: "${PGHOST:?}" "${PGPORT:?}" "${PGDATABASE:?}" "${PGUSER:?}"
[ -n "${PGPASSWORD-}" ] || { echo "PGPASSWORD is empty: the postgres-hive credentials Secret has no password." >&2; exit 1; }
export PGCONNECT_TIMEOUT=5

q() { psql -X -v ON_ERROR_STOP=1 -q -t -A -c "$1"; }

attempt=0
until q 'SELECT 1' >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "PostgreSQL at $PGHOST:$PGPORT (database $PGDATABASE) did not accept the metastore's login within 5 minutes." >&2
    q 'SELECT 1' || true
    exit 1
  fi
  sleep 5
done

tables=$(q "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()")
if [ "$tables" -eq 0 ]; then
  echo "metastore database $PGDATABASE is empty: schematool will create the schema"
  exit 0
fi
versioned=$(q "SELECT to_regclass('\"VERSION\"') IS NOT NULL")
if [ "$versioned" = "t" ] && [ "$(q 'SELECT count(*) FROM "VERSION"')" -gt 0 ]; then
  echo "metastore schema $(q 'SELECT max("SCHEMA_VERSION") FROM "VERSION"') found in $PGDATABASE"
  exit 0
fi

echo "metastore database $PGDATABASE holds $tables tables but no VERSION row: a schema initialisation was" \
     "interrupted; dropping the half-made schema so that schematool makes it again"
psql -X -v ON_ERROR_STOP=1 -q <<'SQL'
BEGIN;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  LOOP
    EXECUTE format('DROP %s IF EXISTS %I CASCADE',
                   CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                  WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.relname);
  END LOOP;
END $$;
COMMIT;
SQL
echo "half-made metastore schema dropped"
