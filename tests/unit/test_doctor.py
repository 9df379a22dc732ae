"""`invoke doctor`'s checks over given nodes, pods and Services; the listener lookup on real sockets;
the architectures file in step with the README. The checks against a live cluster:
tests/integration/test_doctor.py."""

from __future__ import annotations

import contextlib
import os
import re
import socket

import pytest

from datamesh import ROOT, doctor, inventory, listeners
from tests.unit.helpers import all_objects, rendered_for

LISTENER = "python"


def manifests(name: str = "docker-desktop") -> list[dict]:
    return all_objects(rendered_for(name))


def node(arch: str = "amd64", cpu: str = "8", memory: str = "16Gi", storage: str = "60Gi", pressure: bool = False) -> dict:
    conditions = [{"type": "DiskPressure", "status": "True" if pressure else "False"}]
    return {"metadata": {"name": "n1", "labels": {"kubernetes.io/arch": arch}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "ephemeral-storage": storage}, "conditions": conditions}}


class NoStats:
    def node_stats(self, name):
        return None


class Stats:
    def __init__(self, free: int):
        self.free = free

    def node_stats(self, name):
        return {"node": {"fs": {"availableBytes": self.free}}}


@pytest.fixture(scope="module")
def dd() -> inventory.Inventory:
    return inventory.load("docker-desktop")


def test_requests_that_fit_are_a_tick_and_too_little_memory_is_a_cross_with_the_numbers(dd):
    assert doctor.resources(dd, manifests(), [node(cpu="16", memory="32Gi")], []).status == "ok"
    short = doctor.resources(dd, manifests(), [node(memory="2Gi")], [])
    assert short.status == "fail"
    assert re.search(r"requests .* GiB memory but the cluster's nodes have 8 CPU and 2.0 GiB memory", short.message)


def test_an_amd64_only_image_on_arm64_nodes_is_a_warning_naming_its_key(write_inventory):
    inv = inventory.load(str(write_inventory("images: {hive-metastore: 'apache/hive:3.1.3'}\n")))
    rendered = all_objects(rendered_for(str(inv.path)))
    found = doctor.architectures(inv, rendered, [node("arm64")])
    assert found.status == "warn"
    assert "apache/hive:3.1.3 (images.hive-metastore) is published for amd64 only" in found.message
    assert doctor.architectures(inv, rendered, [node("amd64")]).status == "ok"


def test_every_default_image_is_known_and_fits_amd64_and_arm64(dd):
    for arch in ("amd64", "arm64"):
        found = doctor.architectures(dd, manifests(), [node(arch)])
        assert found.status == "ok" and "not checked" not in found.message, found.line()


def test_an_image_nobody_listed_is_named_as_not_checked(dd):
    extra = {"kind": "Deployment", "metadata": {"name": "x", "namespace": "n"},
             "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "example.org/odd:1"}]}}}}
    found = doctor.architectures(dd, [extra], [node()])
    assert found.status == "ok" and "not checked: example.org/odd:1" in found.message


def test_the_architectures_file_and_the_readme_table_agree():
    known = doctor.known_architectures()
    rows = re.findall(r"^\| (\S+?)(?: \(.*?\))? \| ([^|]+) \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    table = {image: said for image, said in rows if ":" in image}
    assert set(table) == {i for i in known if not known[i].get("local")} - {"trinodb/trino:435"}
    for image, said in table.items():
        listed = re.findall(r"amd64|arm64|ppc64le|386|arm/v7", said)
        assert set(listed) == set(known[image]["architectures"]) | ({"386", "arm/v7", "ppc64le"} & set(listed)), image
        assert "only" not in said or known[image]["architectures"] == ["amd64"], image


def trino_service(objects: list[dict], port: int = 30081) -> dict:
    return next(o for o in objects if o["kind"] == "Service" and any(p.get("nodePort") == port for p in o["spec"]["ports"]))


@contextlib.contextmanager
def nodeport_listener():
    """A socket listening on a free port in the NodePort range: this process takes a NodePort."""
    for port in range(32767, 30000, -1):
        try:
            server = socket.create_server(("127.0.0.1", port))
        except OSError:
            continue
        with server:
            yield port
        return


def service(name: str, port: int, ours: bool = True, namespace: str = "data-platform") -> dict:
    labels = {"app.kubernetes.io/part-of": "datamesh"} if ours else {}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"ports": [{"port": 80, "nodePort": port}]}}


def test_nodeports_held_by_our_own_services_or_free_are_a_tick(dd):
    trino = trino_service(manifests())
    found = doctor.nodeports(dd, [trino], [trino])
    assert found.status == "ok" and found.message == "30081: all held by the platform's own Services"


def test_a_nodeport_held_by_a_service_not_ours_is_a_cross_naming_it(dd):
    trino = trino_service(manifests())
    found = doctor.nodeports(dd, [trino], [service("web", 30081, ours=False, namespace="default")])
    assert found.status == "fail"
    assert "port 30081 (nodeports.trino) is held by Service default/web, which is not datamesh's" in found.message


def test_a_nodeport_taken_by_a_listening_program_is_a_cross_naming_the_program(write_inventory):
    with nodeport_listener() as port:
        inv = inventory.load(str(write_inventory(f"nodeports: {{trino: {port}}}\n")))
        ours = trino_service(rendered_for(str(inv.path))["trino"], port)
        found = doctor.nodeports(inv, [ours], [])
    assert found.status == "fail"
    assert f"port {port} (nodeports.trino) on localhost is taken by python" in found.message
    assert f"pid {os.getpid()}" in found.message and "free ports from 30000 to 32767" in found.fix


def test_the_listener_of_a_port_is_found_with_its_program_and_pid():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        found = listeners.listeners({port, 1}, "local")
    assert set(found) == {port}
    assert found[port].pid == os.getpid() and found[port].program.startswith(LISTENER)


def test_a_port_mapper_is_known_by_its_program_or_the_file_it_runs():
    assert listeners.Listener(30080, "docker-proxy", 9).named(["docker-proxy"])
    assert listeners.Listener(30080, "python3", 9, "/usr/bin/python3 /x/forward.py --a").named(["forward.py"])
    assert not listeners.Listener(30080, "nginx", 9, "nginx: master").named(["docker-proxy"])


def test_ss_lines_give_each_port_its_program():
    text = ('LISTEN 0 4096 0.0.0.0:30081 0.0.0.0:* users:(("docker-proxy",pid=812,fd=4))\n'
            "LISTEN 0 128 [::]:30082 [::]:*\n"
            'LISTEN 0 128 127.0.0.1:22 0.0.0.0:* users:(("sshd",pid=1,fd=3))\n')
    found = listeners.parse_ss(text, {30081, 30082, 30083})
    assert found[30081] == listeners.Listener(30081, "docker-proxy", 812)
    assert found[30082].program == "" and "cannot name" in found[30082].shown()
    assert 30083 not in found


def test_disk_below_the_volumes_is_a_cross_and_near_them_a_warning(dd):
    need = doctor.volumes_requested(manifests())
    assert need > 0
    assert doctor.disk(dd, manifests(), [node()], Stats(int(need) - 1)).status == "fail"
    assert doctor.disk(dd, manifests(), [node()], Stats(int(need) + 2**30)).status == "warn"
    assert doctor.disk(dd, manifests(), [node()], Stats(int(need) + 20 * 2**30)).status == "ok"


def test_disk_falls_back_on_allocatable_storage_and_disk_pressure_is_a_cross(dd):
    found = doctor.disk(dd, manifests(), [node(storage="100Gi")], NoStats())
    assert found.status == "ok" and "100.0 GiB allocatable, usage not reported" in found.message
    assert doctor.disk(dd, manifests(), [node(pressure=True)], NoStats()).status == "fail"


def test_findings_json_says_ok_only_without_a_cross(tmp_path):
    path = tmp_path / "doctor.json"
    doctor.write_json([doctor.Finding("api", "ok", "fine"), doctor.Finding("disk", "warn", "low")], path)
    assert '"ok": true' in path.read_text()
    doctor.write_json([doctor.Finding("nodeports", "fail", "taken", "stop it")], path)
    assert '"ok": false' in path.read_text() and "✗" not in path.read_text()

