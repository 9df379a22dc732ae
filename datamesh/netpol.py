"""Who may reach whom: the platform's ingress paths as data, and the NetworkPolicies that enforce them.

Every namespace of the platform denies all ingress (the namespaces role renders the default-deny
policy); each role then opens the paths to its own pods listed in `paths()`: a destination's pods
and ports, and the pods allowed in, or anyone for a port behind a NodePort Service. Pods are
picked by `app.kubernetes.io/name` plus `part-of=datamesh`, namespaces by
`kubernetes.io/metadata.name` (the API server sets it on every namespace). Ingress only: egress
stays open (DNS, the Kubernetes API, downloads). `security.network_policies: false` renders none.

What needs no rule: `invoke seed`, `status --check` and verify's API checks reach services through
the API server's port-forward, which the container runtime dials on the pod's own loopback inside
its network namespace, where NetworkPolicy does not apply (a pod cannot block access to itself);
kubelet probes come from the pod's node, whose traffic NetworkPolicy always allows. README.md,
"Who may reach whom", is the same matrix as a table, which tests/integration/test_network_policies.py
checks cell by cell with cyclonus.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamesh.manifests import metadata, platform, selector

NAMESPACE_NAME = "kubernetes.io/metadata.name"
DEFAULT_DENY = "default-deny-ingress"
POSTGRES_PORT, METASTORE_PORT, S3_PORT, CONSOLE_PORT = 5432, 9083, 9000, 9001
TRINO_HTTP, TRINO_HTTPS, GRAFANA_PORT, DOCS_PORT = 8080, 8443, 3000, 8080
HUB_PORT, PROXY_PORT, PROXY_API_PORT = 8081, 8000, 8001
USER_PORT = 8888  # KubeSpawner 6.2's default port for the servers it starts


@dataclass(frozen=True)
class Pods:
    """Pods of one workload (`name`, its app.kubernetes.io/name) in a namespace (a key of the
    inventory's `namespaces`); no name: every pod there; no namespace: the destination's own."""

    name: str | None = None
    namespace: str | None = "platform"
    labels: tuple[tuple[str, str], ...] = ()

    def match_labels(self) -> dict[str, str]:
        return {**selector(self.name), **dict(self.labels)} if self.name else {}


@dataclass(frozen=True)
class Path:
    """`sources` may open `ports` of the `to` pods; no sources: anyone may (a NodePort's port).
    The role named `component` renders it."""

    component: str
    to: Pods
    ports: tuple[int, ...]
    sources: tuple[Pods, ...] | None


ANYONE = None
OWN_NAMESPACE = Pods(namespace=None)
TRINO = (Pods("trino-coordinator"), Pods("trino-worker"))
GRAFANA, METASTORE, DOCS = Pods("grafana"), Pods("hive-metastore"), Pods("dbt-docs")
BUCKET_JOB = Pods("minio-buckets")
HUB, PROXY = Pods("hub", "jupyterhub"), Pods("proxy", "jupyterhub")
# KubeSpawner's pods: our extra_labels (files/jupyterhub/jupyterhub_config.py) and its own component label
USER_SERVER = Pods("jupyterhub-user", "jupyterhub", (("component", "singleuser-server"),))
# Each PostgreSQL of files/platform.yml (by key) -> its clients. Users' servers hold no database
# login: they read every database through Trino.
DATABASE_CLIENTS = {
    "sales": (*TRINO, GRAFANA),
    "marketing": (*TRINO, GRAFANA),
    "hive": (METASTORE,),
    "sales-domain": (*TRINO, GRAFANA, OWN_NAMESPACE),
    "marketing-domain": (*TRINO, GRAFANA, OWN_NAMESPACE),
}


def database_paths() -> list[Path]:
    """Each PostgreSQL: its clients, and the Job that makes its read-only login where it has one."""
    out = []
    for pg in platform()["postgres"]:
        readonly = (Pods(f"{pg['name']}-readonly", pg["namespace"]),) if pg.get("reader_schemas") else ()
        out.append(Path("postgres", Pods(pg["name"], pg["namespace"]), (POSTGRES_PORT,),
                        (*DATABASE_CLIENTS[pg["key"]], *readonly)))
    return out


def paths(vars: dict) -> list[Path]:
    """The platform's intended ingress paths for this inventory.

    With `security.trino_auth` people log in over HTTPS (8443, the NodePort's port, in-cluster
    clients included) and the plain-HTTP port, which refuses logins, is for Trino's own pods alone.
    """
    auth = vars["security"]["trino_auth"]
    trino = [Path("trino", TRINO[0], (TRINO_HTTPS if auth else TRINO_HTTP,), ANYONE)]
    if auth:
        trino.append(Path("trino", TRINO[0], (TRINO_HTTP,), TRINO))
    if vars["trino"]["workers"] > 0:
        trino.append(Path("trino", TRINO[1], (TRINO_HTTP,), TRINO))
    return [
        *database_paths(),
        Path("hive-metastore", METASTORE, (METASTORE_PORT,), TRINO),
        Path("minio", Pods("minio"), (S3_PORT,), (*TRINO, METASTORE, USER_SERVER, DOCS, BUCKET_JOB)),
        Path("minio", Pods("minio"), (CONSOLE_PORT,), ANYONE),
        *trino,
        Path("grafana", GRAFANA, (GRAFANA_PORT,), ANYONE),
        Path("dbt-docs", DOCS, (DOCS_PORT,), ANYONE),
        Path("jupyterhub", HUB, (HUB_PORT,), (PROXY, USER_SERVER)),
        Path("jupyterhub", PROXY, (PROXY_PORT,), ANYONE),
        Path("jupyterhub", PROXY, (PROXY_API_PORT,), (HUB,)),
        Path("jupyterhub", USER_SERVER, (USER_PORT,), (PROXY, HUB)),
    ]


def network_policies(component: str, vars: dict) -> list[dict]:
    """The NetworkPolicies role `component` renders: one per destination workload of its paths
    (the namespaces role: default-deny ingress in each namespace); none when they are switched off."""
    if not vars["security"]["network_policies"]:
        return []
    if component == "namespaces":
        return [policy(component, DEFAULT_DENY, namespace, {}, []) for namespace in vars["namespaces"].values()]
    grouped: dict[Pods, list[Path]] = {}
    for path in paths(vars):
        if path.component == component:
            grouped.setdefault(path.to, []).append(path)
    return [policy(component, to.name, vars["namespaces"][to.namespace], to.match_labels(),
                   [rule(path, vars["namespaces"]) for path in group])
            for to, group in grouped.items()]


def policy(component: str, name: str, namespace: str, pods: dict, ingress: list[dict]) -> dict:
    spec = {"podSelector": {"matchLabels": pods} if pods else {}, "policyTypes": ["Ingress"]}
    if ingress:
        spec["ingress"] = ingress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(component, name, namespace), "spec": spec}


def rule(path: Path, namespaces: dict[str, str]) -> dict:
    """One ingress rule: its ports, and unless anyone may come, the peers allowed in."""
    out = {"ports": [{"protocol": "TCP", "port": port} for port in path.ports]}
    if path.sources is not ANYONE:
        out = {"from": [peer(source, namespaces) for source in path.sources], **out}
    return out


def peer(source: Pods, namespaces: dict[str, str]) -> dict:
    if source.namespace is None:
        return {"podSelector": {"matchLabels": source.match_labels()} if source.name else {}}
    entry = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: namespaces[source.namespace]}}}
    if source.name:
        entry["podSelector"] = {"matchLabels": source.match_labels()}
    return entry

