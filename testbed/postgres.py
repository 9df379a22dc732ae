"""PostgreSQL 15 (Debian's postgresql-15), one server per instance of the rendered config: the
data-platform's postgres-sales, postgres-marketing and postgres-hive, and each domain's postgres.

Differences from the pod (and why): the image's entrypoint is done here: initdb with
POSTGRES_USER/POSTGRES_PASSWORD into PGDATA (translated), scram-sha-256 for TCP (the image trusts
127.0.0.1, and every testbed client is on 127/8, so password checks would otherwise be skipped),
trust on the unix socket, locale C.UTF-8; then POSTGRES_DB and the /docker-entrypoint-initdb.d/*.sql
scripts, once. The server listens on its service address only, with its socket in the run folder.
Once every instance answers, each readonly Job of the postgres role runs natively as the bucket Job
does (testbed/objectstore.py): its rendered script (files/postgres/readonly-role.sh) unchanged, with
the Job's env and Debian's psql and pg_isready where the image has its own, as root instead of 999.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import time
from pathlib import Path

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import TestbedError, apt_install, logger, run, wait_until
from testbed.native import base_env, native_command, native_env, native_path, place_config, run_job
from testbed.processes import Procs, run_dir

POSTGRES_MAJOR = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")
PG_DATA_VOLUME = "/var/lib/postgresql/data"  # the image's data volume (PGDATA is pgdata/ under it)
PG_INITDB = "/docker-entrypoint-initdb.d"

log = logger("services")


def install() -> Path:
    if not (PG_BIN / "postgres").exists():
        apt_install(f"postgresql-{POSTGRES_MAJOR}", log=log)
    return PG_BIN


def cached() -> bool:
    return (PG_BIN / "postgres").exists()


def psql(socket_dir: Path, user: str, password: str, db: str, *, sql: str | None = None,
         file: Path | None = None, timeout: float = 30) -> str:
    """Debian's psql on the instance's unix socket (trusted, as in the image), for what only the
    server's own side does: creating POSTGRES_DB and running the init scripts (psql syntax)."""
    cmd = [str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(socket_dir), "-p", "5432",
           "-U", user, "-d", db]
    cmd += ["-tA", "-c", sql] if sql is not None else ["-f", str(file)]
    env = base_env({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"})
    return run(cmd, env=env, capture=True, timeout=timeout).stdout.strip()


def _answers(fqdn: str, user: str, password: str, db: str) -> bool:
    return probes.postgres_query(fqdn, 5432, user, password, db, "SELECT 1", timeout=2) == [(1,)]


def start(procs: Procs, cfg: dict) -> dict[str, float]:
    """Every instance of cfg["instances"], as the postgres image's entrypoint runs it: initdb with
    POSTGRES_USER/POSTGRES_PASSWORD on an empty PGDATA, then POSTGRES_DB and the init scripts, once."""
    install()
    base = run_dir() / "postgres"
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    _check_traversable(base, "postgres")
    started: dict[str, tuple] = {}
    for name, inst in cfg["instances"].items():
        t0 = time.monotonic()
        idir = base / name
        idir.mkdir(parents=True, exist_ok=True)
        scripts = place_config(inst, idir)
        env = native_env(inst, idir)
        data = Path(env.get("PGDATA") or native_path(PG_DATA_VOLUME, inst["paths"], idir))
        volume = native_path(PG_DATA_VOLUME, inst["paths"], idir)
        sock = idir / "run"
        fresh = not (data / "PG_VERSION").exists()
        for d in (idir, volume, sock):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "postgres", "postgres")
        if fresh:
            _initdb(idir, data, inst["user"], inst["password"])
        ip = ip_of(inst["fqdn"])
        check_loopback(ip)
        p = procs.start(name, [str(PG_BIN / "postgres"), "-D", str(data), "-c", f"listen_addresses={ip}",
                               "-c", "port=5432", "-c", f"unix_socket_directories={sock}"],
                        env=base_env(), cwd=idir, log_file=idir / "postgres.log", user="postgres",
                        stop_signal=signal.SIGINT)
        started[name] = (p, t0, sock, scripts)
    times = {}
    for name, (p, t0, sock, scripts) in started.items():
        inst = cfg["instances"][name]
        fqdn, db, user, password = inst["fqdn"], inst["database"], inst["user"], inst["password"]
        log_file = base / name / "postgres.log"
        wait_until(f"PostgreSQL {fqdn}", lambda: _answers(fqdn, user, password, "postgres"), 60, p, log_file)
        marker = base / name / "initialized"
        if not marker.exists():
            # as the image's entrypoint: POSTGRES_DB, then the init scripts in name order, once
            exists = psql(sock, user, password, "postgres", sql=f"SELECT 1 FROM pg_database WHERE datname = '{db}'")
            if exists != "1":
                psql(sock, user, password, "postgres", sql=f'CREATE DATABASE "{db}"')
            for pod_path in sorted(pp for pp in scripts if pp.startswith(PG_INITDB + "/")):
                if not pod_path.endswith(".sql"):
                    raise TestbedError(f"{fqdn}: init script {pod_path}: the testbed runs .sql init scripts only")
                psql(sock, user, password, db, file=scripts[pod_path], timeout=120)
                log(f"{fqdn}: {pod_path} applied to {db}")
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        wait_until(f"PostgreSQL {fqdn}/{db}", lambda: _answers(fqdn, user, password, db), 30, p, log_file)
        times[name] = time.monotonic() - t0
    for name, job in (cfg.get("readonly_jobs") or {}).items():
        run_readonly_job(job, base / name / "readonly-job")
    return times


def run_readonly_job(job: dict, base: Path) -> str:
    """One readonly Job, natively: its command (sh readonly-role.sh from its ConfigMap, placed in
    `base`) with the Job's env, Debian's PostgreSQL programs first on PATH. Its output goes to
    base/job.log and is returned; a failure is the Job's failure."""
    what = f"the postgres role's readonly Job for {job['env'].get('PGDATABASE')}"
    out = run_job(job, base, native_command(job, base), PG_BIN, what, timeout=300)
    log(f"postgres: readonly job: {(out or 'ok').strip().splitlines()[-1]}")
    return out


def _initdb(idir: Path, data: Path, user: str, password: str) -> None:
    """initdb as the image's entrypoint runs it, password auth for every TCP client."""
    if data.exists():
        shutil.rmtree(data)
    (idir / "initialized").unlink(missing_ok=True)
    pwfile = idir / "pwfile"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    os.chmod(pwfile, 0o600)
    try:
        run([str(PG_BIN / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C.UTF-8"],
            user="postgres", capture=True, env=base_env(), cwd=idir)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(data / "pg_hba.conf", "a") as fh:
        fh.write("host all all all scram-sha-256\n")  # as the image: every client host, by password


def _check_traversable(path: Path, user: str) -> None:
    uid = pwd.getpwnam(user).pw_uid
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise TestbedError(f"{parent} is not searchable by the '{user}' user (mode {oct(st.st_mode & 0o777)}); "
                               f"set DATAMESH_SERVICES_RUN to a folder under a world-searchable path")
