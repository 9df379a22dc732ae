"""`invoke seed` killed in the middle of each step, on the joined testbed: the next plain `seed`
finishes and leaves exactly the data of an uninterrupted run (every source table's rows, every file
in the lake with its content, every Hive table and data product with its rows, the docs' files).

Each step is rerun with --reset --only <step>, so it really rewrites, and SIGKILLed halfway through
the time it took in the uninterrupted run: no chance for it to tidy up. On demand (about 10
minutes): `pytest -m soak tests/e2e/test_seed_interrupted.py`."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from datamesh import ROOT, probes, role as roles
from tests.e2e.conftest import sql, trino

SCALE = "0.2"
STEPS = ["postgres", "lake", "hive", "dbt", "docs"]
# On demand, with the soak: the whole module. dbt's step takes minutes (a full build on Trino), and in
# the cold CI run of 2026-11-30 a killed seed's PostgreSQL transaction stayed open behind the
# port-forward ("idle in transaction", its table locks held), so the next seed waited on LOCK TABLE:
# back in CI once seed's sessions end a dead client's transaction themselves.
pytestmark = pytest.mark.soak


def seed(env, *args: str, kill_after: tuple[str, float] | None = None) -> tuple[int, str, dict[str, float]]:
    """Run `invoke seed`; the seconds each step took; with kill_after=(step, s), SIGKILL it s seconds into that step."""
    command = [sys.executable, "-u", "-m", "invoke", "seed", "--scale", SCALE, *args]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    started: dict[str, float] = {}
    lines: list[str] = []
    step_began = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("ROLE ["):
                started[line[6:line.index("]")]] = time.monotonic()
                if kill_after and line.startswith(f"ROLE [{kill_after[0]}]"):
                    step_began.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if kill_after and step_began.wait(timeout=600) and proc.poll() is None:
        time.sleep(kill_after[1])
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=1800)
    ended = time.monotonic()
    reader.join()
    order = sorted(started, key=started.get)
    durations = {name: (started[order[i + 1]] if i + 1 < len(order) else ended) - started[name] for i, name in enumerate(order)}
    return proc.returncode, "\n".join(lines), durations


def fingerprint(reach) -> dict[str, object]:
    """What the platform holds that seed made: rows, files and their content, in a comparable form."""
    found: dict[str, object] = {}
    for endpoint, database, tables in roles.load_module("postgres", "seed").databases():
        for table in tables:
            [(rows, digest)] = sql(reach, endpoint, f"SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) "
                                                    f"FROM {table.name} t")
            found[f"postgres {database}.{table.name}"] = (rows, digest)
    bucket = reach.inventory["minio"]["bucket"]
    login = reach.login("minio")
    with reach.open("minio") as (host, port):
        s3 = probes.s3_client(f"{host}:{port}", login.user, login.password)
        for item in s3.list_objects(bucket, recursive=True):
            # Hive's and dbt's table files are counted by rows below; _datamesh/ is seed's own state (dbt's
            # manifest, which records when and how it last ran), not data
            if not item.object_name.startswith(("warehouse/", "_datamesh/")):
                found[f"object {item.object_name}"] = (item.size, item.etag)
    for schema in ("raw", "curated"):
        for [table] in trino(reach, f"SHOW TABLES FROM hive.{schema}"):
            [[rows]] = trino(reach, f"SELECT count(*) FROM hive.{schema}.{table}")
            found[f"hive {schema}.{table}"] = rows
    for catalog in ("sales_domain", "marketing_domain"):
        for schema, table in trino(reach, f"SELECT table_schema, table_name FROM {catalog}.information_schema.tables "
                                          "WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"):
            [[rows]] = trino(reach, f"SELECT count(*) FROM {catalog}.{schema}.{table}")
            found[f"product {catalog}.{schema}.{table}"] = rows
    return found


@pytest.fixture(scope="module")
def uninterrupted(joined, env, reach):
    code, output, durations = seed(env, "--reset", "--yes")
    assert code == 0, output[-3000:]
    assert list(durations) == STEPS
    return durations, fingerprint(reach)


@pytest.mark.parametrize("step", STEPS)
def test_seed_killed_halfway_through_a_step_is_finished_by_the_next_seed(step, uninterrupted, env, reach):
    durations, expected = uninterrupted
    code, output, _ = seed(env, "--reset", "--yes", "--only", step, kill_after=(step, durations[step] / 2))
    assert code == -9, f"the {step} step ended before it was killed:\n{output[-2000:]}"
    code, output, _ = seed(env)
    assert code == 0, output[-3000:]
    assert fingerprint(reach) == expected
