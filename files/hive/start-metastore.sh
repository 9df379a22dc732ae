#!/bin/bash
# Start Hive Metastore through the image's own /entrypoint.sh, which runs `schematool -initSchema`
# unless IS_RESUME=true. Decide IS_RESUME from the database itself, so the schema is created
# exactly once and no restart ever re-runs it:
#   - schematool -info succeeds          -> the schema exists: IS_RESUME=true
#   - it fails because "VERSION" is missing -> an empty database: IS_RESUME=false, initialise it
#   - it fails for any other reason         -> stop without touching the database (kubelet retries)
set -euo pipefail

: "${METASTORE_DB_HOST:?}" "${METASTORE_DB_PORT:?}"

for attempt in $(seq 1 60); do
  if (exec 3<>"/dev/tcp/$METASTORE_DB_HOST/$METASTORE_DB_PORT") 2>/dev/null; then
    break
  fi
  if [ "$attempt" -eq 60 ]; then
    echo "PostgreSQL at $METASTORE_DB_HOST:$METASTORE_DB_PORT did not accept connections within 5 minutes." >&2
    exit 1
  fi
  sleep 5
done

if info=$("$HIVE_HOME/bin/schematool" -dbType "$DB_DRIVER" -info 2>&1); then
  echo "metastore schema found: starting with IS_RESUME=true"
  export IS_RESUME=true
elif grep -qi 'relation "VERSION" does not exist' <<<"$info"; then
  echo "metastore database is empty: the entrypoint initialises the schema (IS_RESUME=false)"
  export IS_RESUME=false
else
  echo "$info" >&2
  echo "cannot tell whether the metastore schema exists (schematool -info failed, see above); not starting." >&2
  exit 1
fi

exec /entrypoint.sh
