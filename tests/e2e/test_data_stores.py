"""PostgreSQL and the object store run with the rendered logins, databases and bucket."""

from __future__ import annotations

import io

import pytest

from datamesh import probes
from testbed.processes import run_dir


def test_each_postgres_instance_has_its_database_and_checks_passwords(config):
    for name, pg in config["postgres"]["instances"].items():
        assert probes.postgres_query(pg["fqdn"], 5432, pg["user"], pg["password"], pg["database"],
                                     "SELECT 1") == [(1,)], name
    pg = config["postgres"]["instances"]["postgres-sales"]
    with pytest.raises(probes.ProbeError, match="password authentication failed"):
        probes.postgres_query(pg["fqdn"], 5432, pg["user"], "wrong-" + pg["password"], pg["database"], "SELECT 1")


def test_bucket_and_prefixes_of_the_minio_role(config, s3):
    bucket = config["s3"]["bucket"]
    names = {o.object_name for o in s3.list_objects(bucket)}
    assert set(config["s3"]["prefixes"]) <= names
    s3.put_object(bucket, "raw/e2e.txt", io.BytesIO(b"ok"), 2)
    try:
        assert s3.get_object(bucket, "raw/e2e.txt").read() == b"ok"
    finally:
        s3.remove_object(bucket, "raw/e2e.txt")


def test_the_bucket_job_ran_its_rendered_script(config):
    log = (run_dir() / "s3" / "bucket-job" / "job.log").read_text()
    assert f"bucket {config['s3']['bucket']} ready with prefixes: {' '.join(config['s3']['prefixes'])}" in log


def test_the_console_nodeport_serves_the_webui_beside_the_s3_api(config):
    if config["s3"]["server"] != "versitygw":
        pytest.skip("the testbed's stand-in for MinIO has no console")
    node_port = next(p["node_port"] for p in config["s3"]["service"] if p.get("node_port"))
    status, page = probes.http_get(f"http://127.0.0.1:{node_port}/ui/")
    assert status == 200 and f'"gateways":["http://localhost:{node_port}"]'.encode() in page
    status, _ = probes.http_get(f"http://127.0.0.1:{node_port}/")  # S3 itself, which wants a signature
    assert status == 403
