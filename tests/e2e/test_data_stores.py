"""PostgreSQL and the object store run with the rendered logins, databases and bucket."""

from __future__ import annotations

import io

import pytest

from tests.testbed import services as svc


def test_each_postgres_instance_has_its_database_and_checks_passwords(config):
    for name, pg in config["postgres"]["instances"].items():
        assert svc._psql(pg["fqdn"], pg["user"], pg["password"], pg["database"], "SELECT 1") == "1", name
    pg = config["postgres"]["instances"]["postgres-sales"]
    with pytest.raises(svc.TestbedError):
        svc._psql(pg["fqdn"], pg["user"], "wrong-" + pg["password"], pg["database"], "SELECT 1")


def test_bucket_and_prefixes_of_the_minio_role(config, s3):
    bucket = config["s3"]["bucket"]
    names = {o.object_name for o in s3.list_objects(bucket)}
    assert set(config["s3"]["prefixes"]) <= names
    s3.put_object(bucket, "raw/e2e.txt", io.BytesIO(b"ok"), 2)
    try:
        assert s3.get_object(bucket, "raw/e2e.txt").read() == b"ok"
    finally:
        s3.remove_object(bucket, "raw/e2e.txt")
