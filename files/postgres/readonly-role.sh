#!/bin/sh
# The read-only login of one database (the postgres role's readonly Job; the service testbed runs
# this same file). Connects to the instance's Service with the owner login and makes sure that the
# reader role READER_USER exists as a plain login (no superuser, no CREATEDB/CREATEROLE, no
# inheritance), has READER_PASSWORD, may CONNECT, has USAGE on each schema of SCHEMAS and SELECT
# on every table and view in them, also on tables the owner creates later (default privileges),
# and that nobody may CREATE in schema public through PUBLIC. It reads first and changes only
# what differs, so a second run writes nothing; a changed Secret converges on the next run.
# The owner must be a superuser (the image's POSTGRES_USER is).
set -eu

for var in PGHOST PGDATABASE PGUSER PGPASSWORD READER_USER READER_PASSWORD SCHEMAS; do
  eval "value=\${$var:-}"
  if [ -z "$value" ]; then
    echo "$var is empty: the Job's env lacks it (its logins come from the instance's credentials Secret);" \
         "run \`invoke up --only credentials,postgres\`." >&2
    exit 1
  fi
done
export PGPORT="${PGPORT:-5432}" PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-5}"
ATTEMPTS="${ATTEMPTS:-36}" PAUSE="${PAUSE:-5}"
where="$PGDATABASE at $PGHOST:$PGPORT"

if [ "$READER_USER" = "$PGUSER" ]; then
  echo "the reader login and the owner login are both '$PGUSER' on $where: the reader would demote the owner;" \
       "give credentials.users.postgres_reader another name." >&2
  exit 1
fi

owner() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }

attempt=1
until pg_isready -q -t "$PGCONNECT_TIMEOUT"; do
  if [ "$attempt" -ge "$ATTEMPTS" ]; then
    pg_isready -t "$PGCONNECT_TIMEOUT" >&2 || true
    echo "PostgreSQL $where did not accept connections within $((ATTEMPTS * PAUSE)) s; check its pod's log." >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep "$PAUSE"
done
if ! refused=$(owner -c 'SELECT 1' 2>&1 >/dev/null); then
  echo "PostgreSQL $where refused the owner login '$PGUSER' of the instance's credentials Secret: $refused" >&2
  exit 1
fi

# Every statement still needed, in order; none when all is as wanted. Run once to show them and
# once, inside the transaction that applies them, through \gexec.
PLAN=$(cat <<'SQL'
\getenv reader READER_USER
\getenv schemas SCHEMAS
WITH reader AS (SELECT oid FROM pg_roles WHERE rolname = :'reader'),
wanted AS (SELECT s AS nspname, o FROM unnest(string_to_array(:'schemas', ' ')) WITH ORDINALITY AS t(s, o) WHERE s <> '')
SELECT statement FROM (
  SELECT 1 AS step, 0 AS o, format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS', :'reader') AS statement
  WHERE NOT EXISTS (SELECT FROM reader)
  UNION ALL
  SELECT 2, 0, format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS', rolname)
  FROM pg_roles WHERE rolname = :'reader'
    AND (NOT rolcanlogin OR rolsuper OR rolcreatedb OR rolcreaterole OR rolinherit OR rolreplication OR rolbypassrls)
  UNION ALL
  SELECT 3, 0, format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader')
  WHERE NOT EXISTS (SELECT FROM pg_database d, aclexplode(d.datacl) a, reader r
                    WHERE d.datname = current_database() AND a.grantee = r.oid AND a.privilege_type = 'CONNECT')
  UNION ALL
  SELECT 4, w.o, format('GRANT USAGE ON SCHEMA %I TO %I', w.nspname, :'reader')
  FROM wanted w
  WHERE NOT EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) a, reader r
                    WHERE n.nspname = w.nspname AND a.grantee = r.oid AND a.privilege_type = 'USAGE')
  UNION ALL
  SELECT 5, w.o, format('GRANT SELECT ON %I.%I TO %I', n.nspname, c.relname, :'reader')
  FROM wanted w JOIN pg_namespace n ON n.nspname = w.nspname JOIN pg_class c ON c.relnamespace = n.oid
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND NOT EXISTS (SELECT FROM aclexplode(c.relacl) a, reader r WHERE a.grantee = r.oid AND a.privilege_type = 'SELECT')
  UNION ALL
  SELECT 6, w.o, format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I GRANT SELECT ON TABLES TO %I',
                        current_user, w.nspname, :'reader')
  FROM wanted w
  WHERE NOT EXISTS (SELECT FROM pg_default_acl d JOIN pg_namespace n ON n.oid = d.defaclnamespace,
                                aclexplode(d.defaclacl) a, reader r
                    WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND d.defaclobjtype = 'r' AND n.nspname = w.nspname
                      AND a.grantee = r.oid AND a.privilege_type = 'SELECT')
  UNION ALL
  SELECT 7, 0, 'REVOKE CREATE ON SCHEMA public FROM PUBLIC'
  WHERE EXISTS (SELECT FROM pg_namespace n, aclexplode(n.nspacl) a
                WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE')
) AS plan ORDER BY step, o, statement
SQL
)

todo=$(printf '%s\n\\g\n' "$PLAN" | owner)
if [ -n "$todo" ]; then
  printf '%s\n' "$todo" | while IFS= read -r line; do echo "$PGDATABASE: $line"; done
  if ! failed=$(printf 'BEGIN;\n%s\n\\gexec\nCOMMIT;\n' "$PLAN" | owner 2>&1 >/dev/null); then
    echo "PostgreSQL $where refused these changes, so none was made: $failed" >&2
    exit 1
  fi
fi

reader_logs_in() { PGUSER="$READER_USER" PGPASSWORD="$READER_PASSWORD" psql -X -q -t -A -c 'SELECT 1' >/dev/null 2>&1; }

has_password=$(owner <<'SQL'
\getenv reader READER_USER
SELECT count(*) FROM pg_authid WHERE rolname = :'reader' AND rolpassword IS NOT NULL;
SQL
)
if [ "$has_password" = 1 ] && reader_logs_in; then
  login="kept"
else
  # this statement carries the new password in clear text, so the server must not log it
  owner >/dev/null <<'SQL'
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
\getenv reader READER_USER
\getenv password READER_PASSWORD
SELECT format('ALTER ROLE %I PASSWORD %L', :'reader', :'password') \gexec
SQL
  login="set from the Secret"
  echo "$PGDATABASE: password of $READER_USER set from the Secret"
fi
if ! reader_logs_in; then
  PGUSER="$READER_USER" PGPASSWORD="$READER_PASSWORD" psql -X -q -c 'SELECT 1' >&2 || true
  echo "PostgreSQL $where refuses the reader login '$READER_USER' with the password just set: does pg_hba.conf" \
       "let it connect by password?" >&2
  exit 1
fi
if [ -n "$todo" ]; then changes="$(printf '%s\n' "$todo" | wc -l) change(s)"; else changes="no change"; fi
echo "read-only login $READER_USER ready on $where for schemas $SCHEMAS ($changes, password $login)"
