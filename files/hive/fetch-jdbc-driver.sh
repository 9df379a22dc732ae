#!/bin/sh
# Put the PostgreSQL JDBC driver on the metastore's jars volume, once: the volume outlives the pod,
# so a restart finds the jar, checks its SHA-256 and starts without the internet. A missing jar or
# one with another checksum is downloaded (through HTTP_PROXY/HTTPS_PROXY when set) and refused
# unless it has the pinned SHA-256. The apache/hive image ships no PostgreSQL driver.
set -eu

: "${AUX_JARS:?}" "${JDBC_REPOSITORY:?}" "${JDBC_VERSION:?}" "${JDBC_SHA256:?}"
jar="$AUX_JARS/postgresql-$JDBC_VERSION.jar"
url="$JDBC_REPOSITORY/org/postgresql/postgresql/$JDBC_VERSION/postgresql-$JDBC_VERSION.jar"

if [ -f "$jar" ] && echo "$JDBC_SHA256  $jar" | sha256sum -c - >/dev/null 2>&1; then
  echo "PostgreSQL JDBC driver $JDBC_VERSION already in $AUX_JARS (SHA-256 verified); nothing to download"
else
  curl --fail --silent --show-error --location --retry 5 --retry-delay 3 --connect-timeout 10 \
    --output "$jar.part" "$url"
  if ! echo "$JDBC_SHA256  $jar.part" | sha256sum -c - >/dev/null; then
    rm -f "$jar.part"
    echo "postgresql-$JDBC_VERSION.jar from $url does not have the pinned SHA-256 $JDBC_SHA256; refusing it." >&2
    exit 1
  fi
  mv "$jar.part" "$jar"
  echo "PostgreSQL JDBC driver $JDBC_VERSION downloaded, verified and placed in $AUX_JARS"
fi
# drivers of other versions (an earlier pin) must not sit on the classpath beside this one
for other in "$AUX_JARS"/postgresql-*.jar; do
  [ "$other" = "$jar" ] || [ ! -e "$other" ] || rm -f "$other"
done
