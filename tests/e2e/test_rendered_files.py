"""The programs read the files the roles render, as rendered: every mounted file of every pod is
in the run folder where the config's paths table puts it, byte for byte. The only rewrite is
listed: the start scripts the testbed runs get the image's /entrypoint.sh pointed at its stand-in."""

from __future__ import annotations

import difflib
import json

from datamesh import inventory

from datamesh import probes
from testbed import hive
from testbed.native import native_path, translate_text
from testbed.processes import run_dir
from testbed.rendered import config_from_render
from tests.e2e.conftest import INVENTORY, address

SECTIONS = {"trino": "trino", "hive": "hive", "jupyterhub": "jupyterhub", "nginx": "nginx", "s3": "s3"}


def _sections(config: dict):
    for name, folder in SECTIONS.items():
        yield name, config[name], run_dir() / folder
    for name, inst in config["postgres"]["instances"].items():
        yield name, inst, run_dir() / "postgres" / name


def test_the_running_config_is_the_current_render(testbed):
    fresh = config_from_render(INVENTORY, live=testbed.config["secrets"])
    assert fresh == testbed.config, "the testbed runs an older render; restart it"


def test_every_mounted_file_is_in_place_byte_for_byte(config):
    checked = 0
    for name, section, base in _sections(config):
        for pod_path, content in section["files"].items():
            on_disk = native_path(pod_path, section["paths"], base).read_text()
            expected = content
            if name == "hive" and pod_path.endswith(".sh"):
                expected = translate_text(content, section["paths"], base)
                changed = [line for line in difflib.ndiff(content.splitlines(), on_disk.splitlines())
                           if line.startswith(("- ", "+ "))]
                assert all("entrypoint.sh" in line for line in changed), (pod_path, changed)
            if name == "trino":  # a file naming another file (rules, password file, keystore) names its place here
                expected = translate_text(content, section["paths"], base)
                removed = [line for line in difflib.ndiff(content.splitlines(), on_disk.splitlines()) if line.startswith("- ")]
                assert all(any(p in line for p in section["paths"]) for line in removed), (pod_path, removed)
            assert on_disk == expected, f"{name}: {pod_path} differs from the rendered file"
            checked += 1
    assert checked >= 20


def test_trino_sees_its_files_where_the_pod_does(config):
    etc = native_path("/etc/trino", config["trino"]["paths"], run_dir() / "trino")
    assert sorted(str(p.relative_to(etc)) for p in etc.rglob("*") if p.is_file()) == [
        "access-control.properties", "catalog/hive.properties", "catalog/marketing.properties",
        "catalog/marketing_domain.properties", "catalog/sales.properties", "catalog/sales_domain.properties",
        "config.properties", "jvm.config", "log.properties", "node.properties", "password-authenticator.properties",
        "rules.json",
    ]
    assert "coordinator=true" in (etc / "config.properties").read_text()  # coordinator.properties, mounted


def test_the_testbed_runs_the_releases_the_roles_deploy(testbed):
    """Trino's /v1/info and the metastore's schema tool name the releases of the rendered images."""
    images = inventory.load(INVENTORY)["images"]
    host, port = address(testbed.config["trino"])
    status, body = probes.http_get(f"http://{host}:{port}/v1/info")
    assert status == 200 and json.loads(body)["nodeVersion"]["version"] == images["trino"].rpartition(":")[2]
    assert hive.HIVE_VERSION == images["hive-metastore"].rpartition(":")[2]
    running = json.loads((run_dir() / "pids.json").read_text())["processes"]["hive-metastore"]
    assert running["cmd"][-1].endswith("start-metastore.sh")
    assert (hive.hive_home() / "dist" / "lib" / f"hive-standalone-metastore-server-{hive.HIVE_VERSION}.jar").exists()
