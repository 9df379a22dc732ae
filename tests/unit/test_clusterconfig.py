"""`invoke cluster-config`: kind and k3d configs whose port mappings come from the one NodePort table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from datamesh import ROOT, clusterconfig, inventory
from datamesh.errors import DatameshError

PLATFORM_PORTS = [30080, 30081, 30082, 30083, 30084]


def parsed(tool: str, name_or_path: str) -> dict:
    return yaml.safe_load(clusterconfig.render(tool, inventory.load(name_or_path)))


def k3d_ports(config: dict) -> list[int]:
    """Every host port a k3d config maps, checking each maps to the same port on server 0."""
    out = []
    for entry in config["ports"]:
        assert entry["nodeFilters"] == ["server:0"]
        host_ip, host, container = entry["port"].split(":")
        assert host_ip == "127.0.0.1" and host == container
        first, _, last = host.partition("-")
        out += list(range(int(first), int(last or first) + 1))
    return out


def test_kind_maps_every_nodeport_to_the_same_host_port():
    config = parsed("kind", "kind")
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["name"] == "datamesh"  # kind names the context kind-datamesh, as inventory/kind.yml expects
    (node,) = config["nodes"]
    assert node["role"] == "control-plane"
    mappings = node["extraPortMappings"]
    assert [m["containerPort"] for m in mappings] == PLATFORM_PORTS
    for mapping in mappings:
        assert mapping["hostPort"] == mapping["containerPort"]
        assert mapping["listenAddress"] == "127.0.0.1" and mapping["protocol"] == "TCP"


def test_k3d_simple_config_maps_the_range_on_the_server():
    config = parsed("k3d", "k3d")
    assert config["apiVersion"] == "k3d.io/v1alpha5" and config["kind"] == "Simple"
    assert config["metadata"]["name"] == "datamesh" and config["servers"] == 1
    assert config["ports"] == [{"port": "127.0.0.1:30080-30084:30080-30084", "nodeFilters": ["server:0"]}]
    assert k3d_ports(config) == PLATFORM_PORTS


def test_ports_follow_the_inventorys_table(write_inventory):
    path = write_inventory("cluster: {context: k3d-lab}\nnodeports: {trino: 31081, dbt-docs: 32000}\n")
    k3d = parsed("k3d", str(path))
    assert k3d["metadata"]["name"] == "lab"
    assert k3d_ports(k3d) == [30080, 30082, 30083, 31081, 32000]
    assert [e["port"] for e in k3d["ports"]] == ["127.0.0.1:30080:30080", "127.0.0.1:30082-30083:30082-30083",
                                                 "127.0.0.1:31081:31081", "127.0.0.1:32000:32000"]
    path = write_inventory("cluster: {context: kind-lab}\nnodeports: {trino: 31081}\n", name="kind-lab.yml")
    kind = parsed("kind", str(path))
    assert sorted(m["hostPort"] for m in kind["nodes"][0]["extraPortMappings"]) == [30080, 30082, 30083, 30084, 31081]


def test_runs_groups_consecutive_ports():
    assert clusterconfig.runs([1, 2, 3, 5, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    assert clusterconfig.runs([]) == []


def test_a_context_the_tool_would_not_create_is_refused():
    with pytest.raises(DatameshError, match="docker-desktop.yml: cluster.context is 'docker-desktop', but kind names"):
        clusterconfig.render("kind", inventory.load("docker-desktop"))
    with pytest.raises(DatameshError, match="--for must be one of kind, k3d"):
        clusterconfig.render("minikube", inventory.load("minikube"))


def test_output_says_how_to_use_it():
    text = clusterconfig.render("kind", inventory.load("kind"))
    assert text.startswith("# kind cluster for datamesh")
    assert "kind create cluster --config" in text and "grafana 30083" in text


@pytest.mark.parametrize("tool", ["kind", "k3d"])
def test_task_prints_the_config_for_the_inventory_named_like_the_tool(tool):
    env = {k: v for k, v in os.environ.items() if k != "DATAMESH_INVENTORY"}
    result = subprocess.run([sys.executable, "-m", "invoke", "cluster-config", "--for", tool], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == parsed(tool, tool)


def test_task_refuses_an_unknown_tool_in_one_sentence():
    result = subprocess.run([sys.executable, "-m", "invoke", "cluster-config", "--for", "minikube"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "error: --for must be one of kind, k3d, got 'minikube'." in result.stderr
