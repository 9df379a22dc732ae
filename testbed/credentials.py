"""The service testbed's credentials, published into the cluster testbed for the joined testbed.

The native programs were initialised with the Secrets of the service testbed's config
(services.saved_config()["secrets"]); the tool, run against the cluster, keeps the live values of
generated Secret keys (datamesh/diff.py fill_generated). So before the tool's first run, the
credentials role's Secrets (the names and keys it renders for the inventory) are created with the
service testbed's values, in namespaces created for them. A Secret that exists with other values
is overwritten, and said so: the programs' data decide, as a volume's would.

Written with `kubectl apply --server-side --field-manager=datamesh-testbed`; what is created
carries managed-by=datamesh-testbed (not part-of=datamesh) until the tool's own apply adopts it.
"""

from __future__ import annotations

import base64
import json

from datamesh.manifests import PART_OF, PLATFORM
from testbed import cluster
from testbed.common import TestbedError, logger
from testbed.links import MANAGED, MANAGER

log = logger("joined")


def publish(values: dict[str, dict[str, str]], inventory: str = "testbed") -> list[str]:
    """Create the inventory's namespaces and credentials Secrets with `values` ('ns/name' -> key ->
    value); returns the namespaces."""
    from datamesh import inventory as inventories, playbook, role

    inv = inventories.load(inventory)
    rendered = playbook.render_all([role.load("namespaces"), role.load("credentials")], inv)
    namespaces = [ns["metadata"]["name"] for ns in rendered["namespaces"]]
    live_namespaces = {item["metadata"]["name"] for item in _list("namespaces")}
    live_secrets = {f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in _list("secrets")}
    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(MANAGED)}}
               for ns in namespaces if ns not in live_namespaces]
    for secret in rendered["credentials"]:
        meta = secret["metadata"]
        ref = f"{meta['namespace']}/{meta['name']}"
        have = values.get(ref) or {}
        absent = [key for key in secret["data"] if key not in have]
        if absent:
            raise TestbedError(f"the service testbed's config has no {', '.join(absent)} for Secret {ref}: "
                               "restart it with `python -m testbed.services up`")
        data = {key: base64.b64encode(have[key].encode()).decode() for key in secret["data"]}
        live = live_secrets.get(ref)
        if live is not None:
            differ = sorted(k for k, v in data.items() if (live.get("data") or {}).get(k) != v)
            if not differ:
                continue
            log(f"Secret {ref} holds other values than the service testbed's for {', '.join(differ)}: overwriting them "
                "(the programs' data decide, as a volume's would)")
        mine = live is None or (live["metadata"].get("labels") or {}).get(PART_OF) != PLATFORM
        objects.append({"apiVersion": "v1", "kind": "Secret", "type": secret.get("type", "Opaque"),
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                     **({"labels": dict(MANAGED)} if mine else {})},
                        "data": data})
    if objects:
        cluster.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "--force-conflicts", "-f", "-",
                        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
        log(f"published {len(objects)} object(s): namespaces and the service testbed's credentials")
    return namespaces


def _list(kind: str) -> list[dict]:
    return json.loads(cluster.kubectl("get", kind, "--all-namespaces", "-o", "json").stdout)["items"]
