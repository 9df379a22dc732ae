"""The Hive Metastore's checks: a real Thrift call (get_all_databases) through a port-forward of
the Kubernetes API, and its pod's paths to its PostgreSQL and to the object store."""

import pytest

from datamesh import probes
from datamesh.manifests import fqdn

NEXT_STEP = "read `kubectl -n {platform} logs deploy/hive-metastore --tail 50`, then run `invoke up --only hive-metastore`"
PATHS = {"postgres-hive": ("postgres-hive", 5432), "minio": ("minio", 9000)}


def test_it_lists_its_databases(reach):
    with reach.open("hive-metastore") as (host, port):
        databases = probes.thrift_get_all_databases(host, port)
    assert "default" in databases, f"the metastore lists no 'default' database: {databases}"


@pytest.mark.parametrize("target", PATHS)
def test_its_pod_resolves_and_reaches(pod, inventory, target):
    service, port = PATHS[target]
    name = fqdn(service, inventory["namespaces"]["platform"])
    inside = pod("hive-metastore")
    assert inside.addr(name).is_resolvable, f"the metastore's pod cannot resolve {name}: is cluster DNS running?"
    assert inside.addr(name).port(port).is_reachable, f"the metastore's pod resolves {name} but cannot connect to port {port}"
