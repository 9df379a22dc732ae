"""datamesh/netpol.py: the ingress paths checked against what the roles render (pods, their labels
and container ports, the NodePort Services), and the policies built from them. Which flows the
policies allow is cyclonus's to decide: tests/integration/test_network_policies.py."""

from __future__ import annotations

import pytest

from datamesh import inventory, netpol
from datamesh.manifests import NAME, platform
from tests.unit.helpers import all_objects, rendered_for, user_server_labels

WORKLOADS = ("Deployment", "StatefulSet", "Job")
VARIANTS = {"workers": "trino: {workers: 2}\n", "no-trino-auth": "security: {trino_auth: false}\n"}


@pytest.fixture(params=["docker-desktop", "testbed", *VARIANTS])
def case(request, write_inventory) -> tuple[dict, dict[str, list[dict]]]:
    """(vars, every role's objects) for a shipped inventory or a variant."""
    name = str(write_inventory(VARIANTS[request.param])) if request.param in VARIANTS else request.param
    return inventory.load(name).vars, rendered_for(name)


def pods(rendered: dict[str, list[dict]]) -> dict[tuple[str, str], tuple[dict, dict[str, int]]]:
    """(namespace, app name) -> (pod labels, container port by name) of every rendered workload."""
    out = {}
    for obj in all_objects(rendered):
        if obj["kind"] in WORKLOADS:
            template = obj["spec"]["template"]
            ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            out[(obj["metadata"]["namespace"], template["metadata"]["labels"][NAME])] = (template["metadata"]["labels"], ports)
    return out


def located(target: netpol.Pods, vars: dict) -> tuple[str, str]:
    return vars["namespaces"][target.namespace], target.name


def test_every_destination_and_port_is_a_rendered_pod_and_its_container_port(case):
    vars, rendered = case
    found = pods(rendered)
    for path in netpol.paths(vars):
        if path.to == netpol.USER_SERVER:
            assert path.ports == (netpol.USER_PORT,)
            continue
        labels, ports = found[located(path.to, vars)]
        assert path.to.match_labels().items() <= labels.items()
        assert set(path.ports) <= set(ports.values()), f"{path.to.name} listens on {ports}, not {path.ports}"


def test_every_listening_port_is_opened_to_someone(case):
    vars, rendered = case
    opened = {(located(p.to, vars), port) for p in netpol.paths(vars) for port in p.ports}
    for where, (_, ports) in pods(rendered).items():
        for port in ports.values():
            assert (where, port) in opened, f"{where[1]} in {where[0]} listens on {port} and nobody may reach it"


def test_every_named_source_is_a_rendered_pod_or_a_user_server(case):
    vars, rendered = case
    found = pods(rendered)
    for path in netpol.paths(vars):
        for source in path.sources or ():
            if source == netpol.USER_SERVER:
                assert source.match_labels().items() <= user_server_labels().items()
            elif source.name and (source != netpol.TRINO[1] or vars["trino"]["workers"]):
                labels, _ = found[located(source, vars)]
                assert source.match_labels().items() <= labels.items(), source


def test_the_port_behind_every_nodeport_is_open_to_anyone(case):
    vars, rendered = case
    found = pods(rendered)
    public = {(located(p.to, vars), port) for p in netpol.paths(vars) if p.sources is netpol.ANYONE for port in p.ports}
    nodeports = 0
    for svc in (o for o in all_objects(rendered) if o["kind"] == "Service" and o["spec"]["type"] == "NodePort"):
        where = (svc["metadata"]["namespace"], svc["spec"]["selector"][NAME])
        for port in svc["spec"]["ports"]:
            nodeports += 1
            assert (where, found[where][1][port["targetPort"]]) in public, f"{svc['metadata']['name']}'s NodePort"
    assert nodeports == 5 and len(public) == 5


def test_every_postgres_instance_has_its_clients_and_hives_has_only_the_metastore():
    assert set(netpol.DATABASE_CLIENTS) == {pg["key"] for pg in platform()["postgres"]}
    assert netpol.DATABASE_CLIENTS["hive"] == (netpol.METASTORE,)


def test_off_renders_nothing_and_on_denies_by_default_in_each_namespace(docker_desktop):
    vars = docker_desktop.vars
    off = {**vars, "security": {**vars["security"], "network_policies": False}}
    assert all(netpol.network_policies(c, off) == [] for c in ("namespaces", "postgres", "trino", "jupyterhub"))
    deny = netpol.network_policies("namespaces", vars)
    assert sorted(p["metadata"]["namespace"] for p in deny) == sorted(vars["namespaces"].values())
    assert all(p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]} for p in deny)


def test_a_policy_names_its_peers_by_namespace_and_its_open_ports_without_peers(write_inventory):
    vars = inventory.load(str(write_inventory("namespaces: {sales: shop, platform: core}\n"))).vars
    [domain] = [p for p in netpol.network_policies("postgres", vars) if p["metadata"]["namespace"] == "shop"]
    assert domain["metadata"]["labels"]["app.kubernetes.io/component"] == "postgres"
    peers = domain["spec"]["ingress"][0]["from"]
    assert {"matchLabels": {netpol.NAMESPACE_NAME: "core"}} == peers[0]["namespaceSelector"]
    assert {"podSelector": {}} in peers  # the domain's own namespace
    [grafana] = netpol.network_policies("grafana", vars)
    assert grafana["spec"]["ingress"] == [{"ports": [{"protocol": "TCP", "port": 3000}]}]
