"""Who may reach whom, decided by a real NetworkPolicy engine: cyclonus v0.5.6 (testbed/cyclonus.py).

The roles are rendered for the shipped inventories; the peers are their workloads' pods (pod
template labels, namespaces labelled as the API server labels them), a user server labelled as
KubeSpawner 6.2 labels it, a stranger pod in each domain namespace, a pod in a namespace outside
the platform and an address outside the cluster. Every cell of README.md's table "Who may reach
whom" must be cyclonus's verdict for that flow. These tests need the cyclonus binary only, no cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
import yaml

from datamesh import ROOT, inventory, playbook
from datamesh.manifests import NAME
from testbed import cyclonus
from tests.unit.helpers import user_server_labels

WORKLOADS = ("Deployment", "StatefulSet", "Job")
NAMESPACE_NAME = "kubernetes.io/metadata.name"
OUTSIDE_IP = "203.0.113.7"  # TEST-NET-3: an address outside the cluster
SPECIAL_ROWS = {"a pod in another namespace": "outsider", "outside the cluster": "outside"}
# id -> (inventory, settings merged over it); the last renders Trino's worker, which the shipped ones do not
RENDERINGS = {"testbed": ("testbed", {}), "docker-desktop": ("docker-desktop", {}),
              "docker-desktop-with-a-worker": ("docker-desktop", {"trino": {"workers": 1}})}


@dataclass
class Peer:
    namespace: str | None  # None: outside the cluster
    namespace_labels: dict = field(default_factory=dict)
    pod_labels: dict = field(default_factory=dict)
    ports: dict[int, str] = field(default_factory=dict)  # container port -> its name
    ip: str = OUTSIDE_IP

    def traffic(self) -> dict:
        if self.namespace is None:
            return cyclonus.external(self.ip)
        return cyclonus.internal(self.namespace, self.namespace_labels, self.pod_labels, self.ip)


@pytest.fixture(scope="session")
def binary():
    return cyclonus.build()


def render(name: str, tmp_path, settings: dict | None = None, **security) -> dict[str, list[dict]]:
    """Every role of the up playbook for inventory `name`, with `settings` and `security` merged over it."""
    data = yaml.safe_load((ROOT / "inventory" / f"{name}.yml").read_text())
    for section, values in {**(settings or {}), "security": security}.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / f"{name}-variant.yml"
    path.write_text(yaml.safe_dump(data))
    return playbook.render_all(playbook.select(playbook.load("up")), inventory.load(str(path)))


def objects(rendered: dict[str, list[dict]], kind: str) -> list[dict]:
    return [obj for objs in rendered.values() for obj in objs if obj["kind"] == kind]


def peers(rendered: dict[str, list[dict]]) -> dict[str, Peer]:
    """Every source and destination, by the name README's table gives it: the pods' app name, with
    `.namespace` where that name is in two namespaces; stranger.<namespace>, outsider, outside."""
    labelled = {ns["metadata"]["name"]: {**ns["metadata"]["labels"], NAMESPACE_NAME: ns["metadata"]["name"]}
                for ns in objects(rendered, "Namespace")}
    found: list[tuple[str, Peer]] = []
    for obj in [o for kind in WORKLOADS for o in objects(rendered, kind)]:
        namespace, template = obj["metadata"]["namespace"], obj["spec"]["template"]
        ports = {p["containerPort"]: p.get("name", "") for c in template["spec"]["containers"] for p in c.get("ports", [])}
        found.append((template["metadata"]["labels"][NAME], Peer(namespace, labelled[namespace], template["metadata"]["labels"], ports)))
    hub_ns = next(o["metadata"]["namespace"] for o in objects(rendered, "Deployment") if o["metadata"]["name"] == "hub")
    found.append(("jupyterhub-user", Peer(hub_ns, labelled[hub_ns], user_server_labels(), {8888: ""})))
    names = [name for name, _ in found]
    out = {name if names.count(name) == 1 else f"{name}.{peer.namespace}": peer for name, peer in found}
    for namespace, labels in labelled.items():
        if labels["datamesh.io/domain"] != "platform":
            out[f"stranger.{namespace}"] = Peer(namespace, labels, {"app": "stranger"})
    out["outsider"] = Peer("default", {NAMESPACE_NAME: "default"}, {"app": "outsider"})
    for index, peer in enumerate(out.values()):
        peer.ip = f"10.0.{index // 250}.{index % 250 + 1}"
    out["outside"] = Peer(None)
    return out


def readme_table() -> tuple[list[tuple[str, int]], dict[str, list[bool]]]:
    """README.md's "Who may reach whom": the columns (peer, port) and each row's cells, by peer."""
    section = (ROOT / "README.md").read_text().split("## Who may reach whom\n", 1)[1].split("\n## ", 1)[0]
    first = re.search(r"^(\|.*\n)+", section, re.M).group(0).splitlines()
    header, rows = first[0], first[2:]
    columns = [(name, int(port)) for name, port in re.findall(r"`([^`:]+):(\d+)`", header)]
    table = {}
    for line in rows:
        label, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert len(cells) == len(columns), f"README row {label!r} has {len(cells)} cells for {len(columns)} columns"
        table[row_peer(label)] = [{"✓": True, "✗": False}[cell] for cell in cells]
    return columns, table


def row_peer(label: str) -> str:
    if label.startswith("`"):
        return label.split("`")[1]
    if label.startswith("another pod in "):
        return f"stranger.{label.removeprefix('another pod in ')}"
    return SPECIAL_ROWS[label]


def verdicts(rendered, found: dict[str, Peer], pairs: list[tuple[str, str, int]], binary) -> list[bool]:
    flows = [cyclonus.flow(found[src].traffic(), found[dst].traffic(), port, found[dst].ports.get(port, ""))
             for src, dst, port in pairs]
    return cyclonus.verdicts(objects(rendered, "NetworkPolicy"), flows, binary)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_every_cell_of_the_readme_matrix_is_what_cyclonus_decides(rendering, tmp_path, binary):
    name, settings = RENDERINGS[rendering]
    rendered = render(name, tmp_path, settings)
    found = peers(rendered)
    columns, table = readme_table()
    missing = {key for key in [*table, *(name for name, _ in columns)] if key not in found}
    assert missing <= (set() if settings else {"trino-worker"}), f"README names peers the roles do not render: {missing}"
    cells = [(src, dst, port, table[src][index]) for src in table for index, (dst, port) in enumerate(columns)
             if src in found and dst in found]
    decided = verdicts(rendered, found, [(src, dst, port) for src, dst, port, _ in cells], binary)
    wrong = [f"{src} -> {dst}:{port}: README says {'✓' if want else '✗'}, cyclonus {'allows' if got else 'denies'}"
             for (src, dst, port, want), got in zip(cells, decided) if want != got]
    assert not wrong, "\n".join(wrong)


def test_a_sales_domain_pod_cannot_reach_the_marketing_domain_database(tmp_path, binary):
    rendered = render("docker-desktop", tmp_path)
    pairs = [("stranger.sales-domain", "postgres.marketing-domain", 5432),
             ("stranger.sales-domain", "postgres.sales-domain", 5432)]
    assert verdicts(rendered, peers(rendered), pairs, binary) == [False, True]


def test_a_user_server_cannot_reach_hives_postgres(tmp_path, binary):
    rendered = render("docker-desktop", tmp_path)
    pairs = [("jupyterhub-user", "postgres-hive", 5432), ("hive-metastore", "postgres-hive", 5432)]
    assert verdicts(rendered, peers(rendered), pairs, binary) == [False, True]


@pytest.mark.parametrize("trino_auth", [True, False])
def test_outside_the_cluster_reaches_the_pod_port_behind_each_nodeport(tmp_path, binary, trino_auth):
    rendered = render("docker-desktop", tmp_path, trino_auth=trino_auth)
    found = peers(rendered)
    behind = nodeport_targets(rendered, found)
    assert len(behind) == 5
    assert verdicts(rendered, found, [("outside", dst, port) for dst, port in behind], binary) == [True] * 5
    assert (("trino-coordinator", 8443) in behind) == trino_auth and (("trino-coordinator", 8080) in behind) != trino_auth


def test_the_columns_anyone_may_reach_are_the_ports_behind_nodeports(tmp_path):
    rendered = render("docker-desktop", tmp_path)
    columns, table = readme_table()
    open_to_all = {column for index, column in enumerate(columns) if all(cells[index] for cells in table.values())}
    assert open_to_all == set(nodeport_targets(rendered, peers(rendered)))


def nodeport_targets(rendered, found: dict[str, Peer]) -> list[tuple[str, int]]:
    """(peer, container port) behind every NodePort of every NodePort Service."""
    out = []
    for svc in objects(rendered, "Service"):
        if svc["spec"]["type"] != "NodePort":
            continue
        key = next(k for k, p in found.items() if p.namespace == svc["metadata"]["namespace"]
                   and svc["spec"]["selector"].items() <= p.pod_labels.items() and p.ports)
        by_name = {name: number for number, name in found[key].ports.items()}
        out += [(key, by_name.get(p["targetPort"], p["targetPort"])) for p in svc["spec"]["ports"] if "nodePort" in p]
    return out


def test_without_network_policies_no_role_renders_one(tmp_path):
    for name in ("docker-desktop", "testbed"):
        rendered = render(name, tmp_path, network_policies=False)
        assert objects(rendered, "NetworkPolicy") == []
        assert objects(rendered, "Deployment")
