"""Hive Metastore runs the role's start script: the first start initialises the schema, every
later start finds it (schematool -info) and resumes without touching it."""

from __future__ import annotations

import uuid

from tests.testbed import services as svc


def _version_rows(config: dict) -> str:
    pg = config["postgres"]["instances"]["postgres-hive"]
    return svc._psql(pg["fqdn"], pg["user"], pg["password"], pg["database"],
                     'SELECT "VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT" FROM "VERSION"')


def test_metastore_restart_resumes_on_the_existing_schema(testbed):
    tag = uuid.uuid4().hex[:8]
    schema = f"restart_{tag}"
    bucket = testbed.config["s3"]["bucket"]
    svc.trino_query(f"CREATE SCHEMA hive.{schema} WITH (location = 's3a://{bucket}/curated/{schema}/')")
    try:
        svc.trino_query(f"CREATE TABLE hive.{schema}.before_restart (id integer)")
        version = _version_rows(testbed.config)
        assert version.count("\n") == 0 and "3.1.0" in version, version  # one row, schema 3.1.0
        out = svc.run_dir() / "hive" / "hive-metastore.out"
        mark = out.stat().st_size

        svc.restart("hive-metastore")

        with open(out, errors="replace") as fh:
            fh.seek(mark)
            restart_log = fh.read()
        assert "metastore schema found: starting with IS_RESUME=true" in restart_log
        assert "Starting metastore schema initialization" not in restart_log
        assert _version_rows(testbed.config) == version, "the VERSION row changed: the schema was re-initialised"
        assert schema in svc.thrift_get_all_databases(svc.HIVE_HOST)
        assert [["before_restart"]] == svc.trino_query(f"SHOW TABLES FROM hive.{schema}")
    finally:
        svc.trino_query(f"DROP TABLE IF EXISTS hive.{schema}.before_restart")
        svc.trino_query(f"DROP SCHEMA IF EXISTS hive.{schema}")
