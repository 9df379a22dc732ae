#!/bin/sh
# Download the PostgreSQL JDBC driver into the metastore's aux-jars volume and refuse it unless its
# SHA-256 matches the pinned one. The apache/hive image ships no PostgreSQL driver.
set -eu

: "${AUX_JARS:?}" "${JDBC_REPOSITORY:?}" "${JDBC_VERSION:?}" "${JDBC_SHA256:?}"
jar="$AUX_JARS/postgresql-$JDBC_VERSION.jar"
url="$JDBC_REPOSITORY/org/postgresql/postgresql/$JDBC_VERSION/postgresql-$JDBC_VERSION.jar"

curl --fail --silent --show-error --location --retry 5 --retry-delay 3 --connect-timeout 10 \
  --output "$jar.part" "$url"
if ! echo "$JDBC_SHA256  $jar.part" | sha256sum -c - >/dev/null; then
  echo "postgresql-$JDBC_VERSION.jar from $url does not have the pinned SHA-256 $JDBC_SHA256; refusing it." >&2
  exit 1
fi
mv "$jar.part" "$jar"
echo "PostgreSQL JDBC driver $JDBC_VERSION verified and placed in $AUX_JARS"
