"""Hive Metastore 4 runs the role's init containers and start script: the first start creates the
schema, every later start finds it current and leaves it alone, and a start that was killed while
creating it is repaired on the next one instead of crash-looping."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from datamesh import probes
from testbed import hive, services as svc
from testbed.common import TestbedError
from testbed.processes import Procs, run_dir, stop_one
from tests.e2e.conftest import address


def _hive_db(config: dict) -> dict:
    return config["postgres"]["instances"]["postgres-hive"]


def _sql(config: dict, sql: str) -> list[tuple]:
    pg = _hive_db(config)
    return probes.postgres_query(pg["fqdn"], 5432, pg["user"], pg["password"], pg["database"], sql)


def _count(config: dict, sql: str) -> int:
    return _sql(config, sql)[0][0]


def _version_rows(config: dict) -> list[tuple]:
    return _sql(config, 'SELECT "VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT" FROM "VERSION"')


def _has_version_row(config: dict) -> bool:
    if _sql(config, "SELECT to_regclass('\"VERSION\"') IS NULL") == [(True,)]:
        return False
    return _count(config, 'SELECT count(*) FROM "VERSION"') != 0


def _log_since(mark: int) -> str:
    with open(run_dir() / "hive" / "hive-metastore.out", errors="replace") as fh:
        fh.seek(mark)
        return fh.read()


def _log_size() -> int:
    return (run_dir() / "hive" / "hive-metastore.out").stat().st_size


def test_metastore_restart_finds_the_current_schema_and_keeps_it(testbed, query):
    tag = uuid.uuid4().hex[:8]
    schema = f"restart_{tag}"
    bucket = testbed.config["s3"]["bucket"]
    query(f"CREATE SCHEMA hive.{schema} WITH (location = 's3a://{bucket}/curated/{schema}/')")
    try:
        query(f"CREATE TABLE hive.{schema}.before_restart (id integer)")
        version = _version_rows(testbed.config)
        assert len(version) == 1 and version[0][1] == "4.0.0", version  # one row: Hive 4.0.x's schema
        mark = _log_size()

        svc.restart("hive-metastore")

        restart_log = _log_since(mark)
        assert "metastore schema is current: starting the metastore" in restart_log
        assert "Starting metastore schema initialization" not in restart_log
        assert _version_rows(testbed.config) == version, "the VERSION row changed: the schema was re-initialised"
        assert schema in probes.thrift_get_all_databases(*address(testbed.config["hive"]))
        assert [["before_restart"]] == query(f"SHOW TABLES FROM hive.{schema}")
    finally:
        query(f"DROP TABLE IF EXISTS hive.{schema}.before_restart")
        query(f"DROP SCHEMA IF EXISTS hive.{schema}")


def _interrupt_schema_creation(config: dict) -> None:
    """Empty the metastore database, start the metastore and SIGKILL it while schematool is creating
    the schema: tables exist, the VERSION row (the script's last statement) does not."""
    stop_one("hive-metastore")
    _sql(config, "DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
                 "GRANT USAGE ON SCHEMA public TO PUBLIC")
    failed: list[BaseException] = []

    def start() -> None:
        try:
            hive.start(Procs(), svc.saved_config()["hive"])
        except TestbedError as e:
            failed.append(e)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if _count(config, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") != 0:
            os.killpg(Procs().entries["hive-metastore"]["pid"], signal.SIGKILL)
            break
        time.sleep(0.02)
    else:
        pytest.fail("schematool created no table within 120 s")
    starter.join(60)
    assert failed, "the killed metastore start did not fail"


def test_a_schema_creation_killed_midway_is_made_again_on_the_next_start(testbed, query):
    config = testbed.config
    for _attempt in range(3):
        _interrupt_schema_creation(config)
        if not _has_version_row(config):
            break
    else:
        pytest.fail("schematool finished before it could be killed, three times")
    half_made = _count(config, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert half_made > 0
    mark = _log_size()

    svc.restart("hive-metastore")

    init_log = (run_dir() / "hive" / "init-prepare-schema.log").read_text()
    assert f"holds {half_made} tables but no VERSION row" in init_log
    assert "half-made metastore schema dropped" in init_log
    assert "Initialization script completed" in _log_since(mark)
    assert "4.0.0" in [row[1] for row in _version_rows(config)]
    assert "default" in probes.thrift_get_all_databases(*address(config["hive"]))
    schema = f"repaired_{uuid.uuid4().hex[:8]}"
    bucket = config["s3"]["bucket"]
    query(f"CREATE SCHEMA hive.{schema} WITH (location = 's3a://{bucket}/curated/{schema}/')")
    query(f"DROP SCHEMA hive.{schema}")
