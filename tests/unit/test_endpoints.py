"""datamesh/endpoints.py and the pure parts of a port-forward (datamesh/kube.py): which pod and
which port a forward reaches, which Secret holds a login; no sockets (the forward itself is
proven on the joined testbed, tests/e2e/test_joined.py)."""

from __future__ import annotations

import base64
import ssl

import pytest

from datamesh import checks, inventory, kube, kubeconfig
from datamesh.endpoints import Endpoints, targets
from datamesh.errors import DatameshError
from tests.unit.helpers import all_objects, rendered_for


def pod(name: str, *, ready_at: str | None = "2026-11-30T10:00:00Z", phase: str = "Running", restarts: int = 0,
        created: str = "2026-11-30T09:00:00Z", deleting: bool = False, ports: list[dict] | None = None) -> dict:
    conditions = [{"type": "Ready", "status": "True" if ready_at else "False", "lastTransitionTime": ready_at or created}]
    meta = {"name": name, "namespace": "data-platform", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T11:00:00Z"
    return {"metadata": meta,
            "spec": {"containers": [{"name": "main", "ports": ports or []}]},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "main", "restartCount": restarts}]}}


def service(ports: list[dict]) -> dict:
    return {"metadata": {"name": "trino-coordinator", "namespace": "data-platform"}, "spec": {"ports": ports}}


# -- which pod: as kubectl port-forward svc/NAME picks one -----------------------------------------

def test_pick_pod_takes_only_ready_running_pods_that_are_not_being_deleted():
    pods = [pod("starting", ready_at=None), pod("pending", phase="Pending"), pod("leaving", deleting=True)]
    assert kube.pick_pod(pods) is None
    assert kube.pick_pod(pods + [pod("serving")])["metadata"]["name"] == "serving"


def test_pick_pod_prefers_the_pod_ready_longest_then_fewest_restarts_then_oldest():
    newer = pod("newer", ready_at="2026-11-30T10:05:00Z")
    older = pod("older", ready_at="2026-11-30T10:00:00Z")
    assert kube.pick_pod([newer, older])["metadata"]["name"] == "older"
    flappy = pod("flappy", restarts=3)
    steady = pod("steady", restarts=0)
    assert kube.pick_pod([flappy, steady])["metadata"]["name"] == "steady"
    young = pod("young", created="2026-11-30T09:30:00Z")
    old = pod("old", created="2026-11-30T08:00:00Z")
    assert kube.pick_pod([young, old])["metadata"]["name"] == "old"


# -- which port: the Service port's targetPort, by number or by the container port's name -----------

def test_target_port_resolves_numbers_names_and_a_missing_target_port():
    backend = pod("p", ports=[{"name": "http", "containerPort": 8080}])
    assert kube.target_port(service([{"name": "http", "port": 80, "targetPort": 8080}]), "http", backend) == 8080
    assert kube.target_port(service([{"name": "http", "port": 80, "targetPort": "http"}]), "http", backend) == 8080
    assert kube.target_port(service([{"name": "http", "port": 8080}]), "http", backend) == 8080


def test_target_port_names_the_service_and_the_port_it_cannot_resolve():
    backend = pod("trino-abc", ports=[{"name": "web", "containerPort": 8080}])
    with pytest.raises(ValueError, match=r"data-platform/trino-coordinator has no port named 'api'"):
        kube.target_port(service([{"name": "http", "port": 80, "targetPort": "web"}]), "api", backend)
    with pytest.raises(ValueError, match=r"targets port 'http', which pod trino-abc does not name"):
        kube.target_port(service([{"name": "http", "port": 80, "targetPort": "http"}]), "http", backend)


# -- what each name reaches: the Services and Secrets the roles render -----------------------------

@pytest.mark.parametrize("inventory_name", ["docker-desktop", "testbed"])
def test_every_endpoint_names_a_rendered_service_port_and_login_secret(inventory_name):
    inv = inventory.load(inventory_name)
    objects = all_objects(rendered_for(inventory_name))
    index = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    for name, target in targets().items():
        namespace = inv["namespaces"][target.namespace]
        svc = index.get(("Service", namespace, target.service))
        assert svc, f"{name}: no Service {namespace}/{target.service} is rendered"
        assert target.port in [p.get("name") for p in svc["spec"]["ports"]], f"{name}: no port {target.port}"
        if target.secret:
            secret = index.get(("Secret", namespace, target.secret))
            assert secret, f"{name}: no Secret {namespace}/{target.secret} is rendered"
            assert {target.user_key, target.password_key} <= set(secret["data"]), name


def test_every_check_uses_a_known_endpoint_of_a_real_role():
    from datamesh import playbook

    roles = {r.name for r in playbook.select(playbook.load("up"))}
    for role_name, role_checks in checks.CHECKS.items():
        assert role_name in roles
        for name, _ in role_checks:
            assert name in targets()


class FakeCluster:
    """Live objects by (kind, namespace, name): enough for the pure logic of Endpoints."""

    api_timeout = 10

    def __init__(self, objects: dict[tuple[str, str, str], dict], pods: list[dict]):
        self.objects, self._pods = objects, pods

    def get(self, obj: dict) -> dict | None:
        meta = obj["metadata"]
        return self.objects.get((obj["kind"], meta["namespace"], meta["name"]))

    def pods(self, namespace: str, selector: dict) -> list[dict]:
        return self._pods


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_login_decodes_the_secret_in_the_namespace_the_inventory_names():
    inv = inventory.load("testbed")
    secret = {"data": {"username": b64("admin"), "password": b64("s3cret")}}
    reach = Endpoints(FakeCluster({("Secret", "sales-domain", "postgres-credentials"): secret}, []), inv)
    login = reach.login("postgres-sales-domain")
    assert (login.user, login.password, login.database) == ("admin", "s3cret", "sales_domain")


def test_a_missing_secret_an_unknown_name_and_no_ready_pod_each_say_what_to_do():
    inv = inventory.load("testbed")
    svc = {"metadata": {"name": "postgres-sales", "namespace": "data-platform"},
           "spec": {"selector": {"app": "x"}, "ports": [{"name": "postgres", "port": 5432}]}}
    reach = Endpoints(FakeCluster({("Service", "data-platform", "postgres-sales"): svc}, [pod("postgres-sales-0", ready_at=None)]), inv)
    with pytest.raises(DatameshError, match=r"Secret data-platform/postgres-sales-credentials .* run `invoke up`"):
        reach.login("postgres-sales")
    with pytest.raises(DatameshError, match=r"does not know a service named 'postgres'; known: postgres-sales"):
        reach.target("postgres")
    with pytest.raises(DatameshError, match=r"no Ready pod behind Service data-platform/postgres-sales \(pods: postgres-sales-0 Running\)"):
        reach.pod("postgres-sales")


def test_pod_returns_the_chosen_pod_and_the_port_its_service_targets():
    inv = inventory.load("testbed")
    svc = {"metadata": {"name": "proxy-public", "namespace": "jupyterhub"},
           "spec": {"selector": {"app": "proxy"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    ready = pod("proxy-1", ports=[{"name": "http", "containerPort": 8000}])
    reach = Endpoints(FakeCluster({("Service", "jupyterhub", "proxy-public"): svc}, [pod("proxy-0", ready_at=None), ready]), inv)
    chosen, port = reach.pod("jupyterhub")
    assert (chosen["metadata"]["name"], port) == ("proxy-1", 8000)


# -- the websocket's TLS and error answers ---------------------------------------------------------

def test_stream_tls_verifies_with_the_kubeconfig_ca_and_client_certificate():
    login = kubeconfig.Login("https://127.0.0.1:6443", ca_file="/ca.crt", cert_file="/c.crt", key_file="/c.key")
    options = kubeconfig.stream_tls(login)
    assert options == {"cert_reqs": ssl.CERT_REQUIRED, "ca_certs": "/ca.crt", "certfile": "/c.crt", "keyfile": "/c.key"}
    insecure = kubeconfig.Login("https://127.0.0.1:6443", verify=False, tls_server_name="kubernetes")
    assert kubeconfig.stream_tls(insecure) == {"cert_reqs": ssl.CERT_NONE, "check_hostname": False,
                                               "server_hostname": "kubernetes"}


def test_answer_of_reads_status_json_and_keeps_plain_text_as_the_message():
    assert kube.answer_of(b'{"kind": "Status", "message": "pods \\"x\\" not found"}')["message"] == 'pods "x" not found'
    assert kube.answer_of(b"upstream connect error") == {"message": "upstream connect error"}
    assert kube.answer_of(None) == {}
