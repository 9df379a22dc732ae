"""testbed/rendered.py: the service testbed's config is what the pods would see, taken from
the rendered manifests only (no services needed: the e2e tier runs them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datamesh import inventory
from testbed import forwarder, native, nginx
from testbed.rendered import config_from_render


@pytest.fixture(scope="module")
def lab() -> dict:
    return config_from_render("docker-desktop")


def sections(config: dict):
    yield from ((name, config[name]) for name in ("s3", "hive", "trino", "jupyterhub", "nginx"))
    yield "proxy", config["jupyterhub"]["proxy"]
    yield from config["postgres"]["instances"].items()
    yield from ((f"{name} readonly Job", job) for name, job in config["postgres"]["readonly_jobs"].items())


def test_trino_files_are_the_configmap_keys_as_the_pod_mounts_them(lab):
    files = lab["trino"]["files"]
    assert sorted(files) == sorted([
        "/etc/trino/node.properties", "/etc/trino/jvm.config", "/etc/trino/log.properties",
        "/etc/trino/config.properties", *(f"/etc/trino/catalog/{c}.properties"
                                         for c in ("sales", "marketing", "sales_domain", "marketing_domain", "hive")),
        "/etc/trino/password-authenticator.properties", "/etc/trino/access-control.properties", "/etc/trino/rules.json",
        "/etc/trino-users/password.db", "/etc/trino-tls/tls.pem"])
    assert files["/etc/trino/config.properties"].startswith("coordinator=true\n")
    assert "hive.security=allow-all\n" in files["/etc/trino/catalog/hive.properties"]


def test_every_variable_a_file_names_is_in_its_container_env(lab):
    for name, pattern in (("trino", r"\$\{ENV:(\w+)\}"), ("hive", r"\$\{env\.(\w+)\}")):
        named = set(re.findall(pattern, "".join(lab[name]["files"].values())))
        assert named and named <= set(lab[name]["env"]), (name, named - set(lab[name]["env"]))
    assert lab["trino"]["env"]["HOSTNAME"] == "trino-coordinator-0"  # node.id=${ENV:HOSTNAME}


def test_secrets_are_resolved_as_the_engine_fills_them(lab):
    assert lab["trino"]["env"]["SALES_DOMAIN_DB_PASSWORD"] == "admin123"  # copied by the engine from sales-domain
    assert lab["hive"]["env"]["AWS_SECRET_ACCESS_KEY"] == lab["s3"]["secret_key"] == "minioadmin"
    token = lab["jupyterhub"]["env"]["CONFIGPROXY_AUTH_TOKEN"]
    assert len(token) >= 24 and lab["jupyterhub"]["proxy"]["env"]["CONFIGPROXY_AUTH_TOKEN"] == token  # generated
    assert lab["jupyterhub"]["env"]["POD_NAMESPACE"] == "jupyterhub"  # fieldRef metadata.namespace


def test_generated_passwords_are_shared_by_every_consumer_and_kept_with_live():
    name = next(n for n in inventory.available() if inventory.load(n).vars["credentials"]["policy"] == "generate")
    first = config_from_render(name)
    sales = first["postgres"]["instances"]["postgres-sales"]["password"]
    reader = first["secrets"]["data-platform/postgres-sales-credentials"]["reader-password"]
    assert sales != "admin123" and first["trino"]["env"]["SALES_DB_PASSWORD"] == reader != sales  # Trino reads as the reader
    assert first["trino"]["env"]["SALES_DOMAIN_DB_PASSWORD"] == first["postgres"]["instances"]["postgres-sales-domain"]["password"]
    again = config_from_render(name, live=first["secrets"])
    assert again == first
    assert config_from_render(name)["postgres"]["instances"]["postgres-sales"]["password"] != sales


def test_every_mounted_file_has_a_place_in_the_run_folder(lab):
    base = Path("/run-folder")
    for name, section in sections(lab):
        for pod_path in [*section["files"], *section["volumes"]]:
            assert native.native_path(pod_path, section["paths"], base).is_relative_to(base), (name, pod_path)


def test_service_ports_come_from_the_rendered_services(lab):
    assert lab["nginx"]["service"] == [{"host": "dbt-docs.data-platform.svc.cluster.local", "port": 80,
                                        "target_port": 8080, "node_port": 30084}]
    assert [(s["port"], s.get("node_port")) for s in lab["trino"]["service"]] == [(8080, None), (8443, 30081)]
    pairs = forwarder.forward_pairs(lab)
    assert "127.0.0.1:30080=127.42.1.22:8000" in pairs and "127.42.1.22:80=127.42.1.22:8000" in pairs


def test_each_readonly_job_runs_its_rendered_script_with_its_instances_logins(lab):
    """The testbed runs the script the pod mounts, against the instance it stands for."""
    jobs = lab["postgres"]["readonly_jobs"]
    assert set(jobs) == {"postgres-sales", "postgres-marketing", "postgres-sales-domain", "postgres-marketing-domain"}
    script = (Path(__file__).parents[2] / "files/postgres/readonly-role.sh").read_text()
    for name, job in jobs.items():
        instance = lab["postgres"]["instances"][name]
        assert native.native_command(job, Path("/run/job")) == ["/bin/sh", "/run/job/scripts/readonly-role.sh"]
        assert job["files"] == {"/opt/datamesh/scripts/readonly-role.sh": script}
        env = job["env"]
        assert (env["PGHOST"], env["PGDATABASE"], env["PGUSER"], env["PGPASSWORD"]) == (
            instance["fqdn"], instance["database"], instance["user"], instance["password"])
        assert (env["READER_USER"], env["READER_PASSWORD"]) == ("reader", "reader123")
    assert jobs["postgres-sales-domain"]["env"]["SCHEMAS"] == "data_products public"


def test_nginx_and_hive_scripts_are_pointed_at_the_run_folder(lab):
    base = Path("/run/nginx")
    conf = nginx.nginx_server_conf(lab["nginx"]["files"]["/etc/nginx/conf.d/default.conf"], "127.42.1.30",
                                 lab["nginx"]["paths"], base)
    assert "listen 127.42.1.30:8080;" in conf and "root /run/nginx/html;" in conf
    assert "root /run/nginx/placeholder;" in conf and "/usr/share/nginx" not in conf
    script = native.translate_text(lab["hive"]["files"]["/opt/datamesh/scripts/start-metastore.sh"],
                                lab["hive"]["paths"], Path("/run/hive"))
    assert "exec /run/hive/image/entrypoint.sh" in script and '"$HIVE_HOME/bin/schematool"' in script
