#!/bin/bash
# Start Hive Metastore 4 through the image's own /entrypoint.sh, with the schema brought to this
# release first and explicitly: `schematool -initOrUpgradeSchema` creates it in an empty database
# (the prepare-schema init container has made sure no half-made one is left), upgrades a schema an
# older release made (a volume kept from the platform's Hive 3.1.3), and changes nothing when it
# is current. The entrypoint then starts the metastore without touching the schema (IS_RESUME).
set -euo pipefail

"$HIVE_HOME/bin/schematool" -dbType "$DB_DRIVER" -initOrUpgradeSchema
echo "metastore schema is current: starting the metastore (IS_RESUME=true)"
export IS_RESUME=true
exec /entrypoint.sh
