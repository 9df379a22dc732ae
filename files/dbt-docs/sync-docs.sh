#!/bin/sh
# The dbt-docs pod's sync container: every $INTERVAL seconds, copy what `invoke seed` publishes to
# s3://$BUCKET/$PREFIX (index.html, manifest.json, catalog.json) into the site volume nginx serves.
# With the AWS CLI (v2 in the pod's image, v1 from PyPI in the service testbed: `s3 sync` is the
# same in both), on whichever S3 server the minio role runs. A changed file replaces the served one
# by rename (never half-written), the data files before index.html; a failed round is retried.
# Each round, failed or not, writes its time to $HOME/heartbeat: the container's probes read it.
set -u

: "${S3_ENDPOINT:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${BUCKET:?}" "${PREFIX:?}" \
  "${SITE:?}" "${INTERVAL:?}" "${HOME:?}"

export AWS_CONFIG_FILE="$HOME/.aws-config" AWS_PAGER=""
cat > "$AWS_CONFIG_FILE" <<'CONFIG'
[default]
request_checksum_calculation = when_required
response_checksum_validation = when_required
s3 =
  addressing_style = path
CONFIG

incoming="$HOME/incoming"
mkdir -p "$incoming"
echo "serving the dbt docs of s3://$BUCKET/$PREFIX from $SITE, checked every ${INTERVAL}s"
failing=""
while :; do
  if aws --endpoint-url "$S3_ENDPOINT" --cli-connect-timeout 5 --only-show-errors \
       s3 sync "s3://$BUCKET/$PREFIX" "$incoming" --delete; then
    failing=""
    for name in manifest.json catalog.json index.html; do
      [ -f "$incoming/$name" ] || continue
      if [ ! -f "$SITE/$name" ] || [ "$(cksum < "$incoming/$name")" != "$(cksum < "$SITE/$name")" ]; then
        cp "$incoming/$name" "$SITE/.$name.new" && mv -f "$SITE/.$name.new" "$SITE/$name" \
          && echo "published $name ($(wc -c < "$SITE/$name") bytes)"
      fi
    done
  elif [ -z "$failing" ]; then
    failing=1
    echo "could not read s3://$BUCKET/$PREFIX from $S3_ENDPOINT; the site keeps what it has, retrying every ${INTERVAL}s" >&2
  fi
  date +%s > "$HOME/heartbeat"
  sleep "$INTERVAL"
done
