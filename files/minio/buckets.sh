#!/bin/sh
# Create the data lake bucket and an empty `.keep` object per prefix, with the AWS CLI (v2 in
# the Job's image, v1 from PyPI in the service testbed: the s3api commands below are the same in
# both), on whichever S3 server the minio role runs. Safe to run any number of times: an existing
# bucket is kept, and re-writing an empty `.keep` leaves everything else under the prefix alone.
# Waits for the server first, since the Job starts with it.
set -eu

: "${S3_ENDPOINT:?}" "${AWS_ACCESS_KEY_ID:?}" "${AWS_SECRET_ACCESS_KEY:?}" "${BUCKET:?}" "${PREFIXES:?}" "${HOME:?}"

# Path-style requests (the in-cluster name is no bucket domain), checksums only where the S3 API
# asks for them (newer CLIs add CRC headers by default), no pager.
export AWS_CONFIG_FILE="$HOME/.aws-config" AWS_PAGER=""
cat > "$AWS_CONFIG_FILE" <<'CONFIG'
[default]
request_checksum_calculation = when_required
response_checksum_validation = when_required
s3 =
  addressing_style = path
CONFIG

s3api() { aws --endpoint-url "$S3_ENDPOINT" --cli-connect-timeout 5 --output text s3api "$@"; }

attempt=0
until s3api list-buckets >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  if [ "$attempt" -ge 60 ]; then
    echo "the object store (${S3_SERVER:-S3}) at $S3_ENDPOINT did not accept the root credentials within 5 minutes; check the minio pod." >&2
    s3api list-buckets >&2 || true
    exit 1
  fi
  sleep 5
done

if ! s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  # a create racing another run finds the bucket made: that is success too
  if ! s3api create-bucket --bucket "$BUCKET" >/dev/null 2>"$HOME/create-bucket.err"; then
    case "$(cat "$HOME/create-bucket.err")" in
      *BucketAlreadyOwnedByYou*) ;;
      *) cat "$HOME/create-bucket.err" >&2; exit 1 ;;
    esac
  fi
fi
for prefix in $PREFIXES; do
  s3api put-object --bucket "$BUCKET" --key "${prefix%/}/.keep" >/dev/null
done
echo "bucket $BUCKET ready with prefixes: $PREFIXES (${S3_SERVER:-S3} at $S3_ENDPOINT)"
