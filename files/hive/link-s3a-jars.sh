#!/bin/sh
# Put hadoop-aws and the AWS SDK bundle of the image's own Hadoop on the metastore's classpath. They
# ship under share/hadoop/tools/lib, which Hive does not load; symlinks (not copies of ~200 MB) into
# the aux-jars volume are enough, since the metastore container runs the same image.
set -eu

: "${AUX_JARS:?}"
lib=/opt/hadoop/share/hadoop/tools/lib
for jar in "$lib"/hadoop-aws-*.jar "$lib"/aws-java-sdk-bundle-*.jar; do
  if [ ! -f "$jar" ]; then
    echo "no $jar in the image: the metastore cannot read s3a:// without it." >&2
    exit 1
  fi
  ln -sf "$jar" "$AUX_JARS/"
done
ls -l "$AUX_JARS"
