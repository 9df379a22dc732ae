#!/bin/sh
# Create the data lake bucket and an empty `.keep` object per prefix. Safe to run any number of
# times: `mc mb --ignore-existing` keeps an existing bucket, and re-writing an empty `.keep` leaves
# everything else under the prefix alone. Waits for MinIO first, since the Job starts with it.
set -eu

: "${MINIO_ENDPOINT:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${BUCKET:?}" "${PREFIXES:?}"

mc() { command mc --config-dir /tmp/.mc --quiet "$@"; }

attempt=0
until mc alias set datamesh "$MINIO_ENDPOINT" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1 \
    && mc ls datamesh >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "MinIO at $MINIO_ENDPOINT did not accept the root credentials within 5 minutes; check the minio pod." >&2
    exit 1
  fi
  sleep 5
done

mc mb --ignore-existing "datamesh/$BUCKET"
: > /tmp/.keep
for prefix in $PREFIXES; do
  mc cp /tmp/.keep "datamesh/$BUCKET/${prefix%/}/.keep"
done
echo "bucket $BUCKET ready with prefixes: $PREFIXES"
