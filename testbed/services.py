"""Service testbed: the platform's real programs, run natively as plain processes.

No container runtime is reachable here, so each component of the platform runs as the program its
image ships, installed from a package registry, with the config the roles render for the
docker-desktop inventory (testbed/rendered.py: the files each pod mounts, byte for byte, its
resolved env, its command, its Services), on the in-cluster name it has in Kubernetes:

    service                         name (port)                                              from
    PostgreSQL 15 x5                postgres-sales.data-platform.svc.cluster.local (5432)    Debian postgresql-15
                                    postgres-marketing / postgres-hive (data-platform),
                                    postgres.sales-domain, postgres.marketing-domain
      + its readonly Jobs' script   (on the four instances with a reader login)              (its psql)
    S3 object store (versitygw)     minio.data-platform.svc.cluster.local (9000)             Go module proxy
      + its bucket Job's script     + NodePort 127.0.0.1:30082 (console: WebUI on /ui/)     PyPI (awscli)
    Hive Metastore 4.0.1            hive-metastore.data-platform.svc.cluster.local (9083)    Maven Central
    Trino 476                       trino-coordinator.data-platform.svc.cluster.local (8080) Maven Central
                                    + 8443 (HTTPS, logins) and NodePort 127.0.0.1:30081 -> 8443
    JupyterHub 4.1.6 + CHP 4.6.1    hub.jupyterhub.svc.cluster.local (8081),                 PyPI (the user
      in the user image's Python                                                             image's pins), npm
                                    proxy-api.jupyterhub.svc.cluster.local (8001),
                                    proxy-public.jupyterhub.svc.cluster.local (80 -> 8000)
                                    + NodePort 127.0.0.1:30080
    nginx (dbt docs)                dbt-docs.data-platform.svc.cluster.local (80 -> 8080)    Debian nginx-light
      + its sync container's script + NodePort 127.0.0.1:30084                              PyPI (awscli)

One module per service (postgres, objectstore, hive, trino, jupyterhub, nginx, forwarder), each
with its version, install, start and its "differences from the pod" next to the code that makes
them; everything not listed there is the rendered file, env or command. Names and addresses:
addresses.py; the pod -> run folder translation: native.py; the process table: processes.py. No
Grafana (30083): it is AGPL.

Downloads and builds are cached by version under ${DATAMESH_CACHE:-~/.cache/datamesh}/testbed/
<name>-<version>/ (testbed/common.py). The run folder (config files, data, logs, pids.json,
config.json) is .testbed/services/ in the work tree; data survive `down()` like
PersistentVolumes, `down(purge=True)` removes them. Generated Secrets keep the values of the last
run (config.json), as live Secrets do across `invoke up`.

CLI:  python -m testbed.services install [--only NAMES] | up [--inventory NAME | --config FILE]
      | down [--purge] | status
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from datamesh import probes
from datamesh.errors import DatameshError
from testbed import forwarder, hive, jupyterhub, nginx, objectstore, postgres, trino
from testbed.addresses import remove_hosts, write_hosts
from testbed.common import TestbedError, cache_lock, cache_root, clean_stale_builds, dir_size, logger, pid_alive
from testbed.processes import Procs, pids_file, rss_bytes, run_dir, stop_all, stop_one, testbed_pids, tree_rss

# component -> its module (install(), cached(), start()), in the order they are installed
COMPONENTS = {"postgres": postgres, "s3": objectstore, "hive": hive, "trino": trino,
              "jupyterhub": jupyterhub, "nginx": nginx}

log = logger("services")


# ------------------------------------------------------------------ install


def install(only=None) -> dict[str, Path]:
    """Download/build what is missing (idempotent); returns {component: path}."""
    names = _select(only)
    paths: dict[str, Path] = {}
    with cache_lock():
        clean_stale_builds()
        if "hive" in names:
            hive.hive_java()
        if "trino" in names:
            trino.trino_java()
        for name in names:
            t0 = time.monotonic()
            before = COMPONENTS[name].cached()
            paths[name] = COMPONENTS[name].install()
            state = "cached" if before else f"installed in {time.monotonic() - t0:.1f}s"
            if not before and cache_root() in paths[name].parents:
                state += f" ({dir_size(paths[name]) / 2**20:.0f} MiB)"
            log(f"{name:<10} {state:<22} {paths[name]}")
    return paths


def _select(only) -> list[str]:
    if only is None:
        return list(COMPONENTS)
    if isinstance(only, str):
        only = [s.strip() for s in only.split(",") if s.strip()]
    unknown = [n for n in only if n not in COMPONENTS]
    if unknown:
        raise TestbedError(f"unknown component(s) {', '.join(unknown)}; known: {', '.join(COMPONENTS)}")
    return [n for n in COMPONENTS if n in only]


# ------------------------------------------------------------------ config: the rendered one


def default_config(inventory: str | None = None) -> dict:
    """The config the roles render (testbed/rendered.py). Generated Secrets keep the values of
    the last run, as a cluster's live Secrets keep theirs across `invoke up`."""
    from testbed.rendered import config_from_render  # the render (and its imports) only when needed

    return config_from_render(inventory or "docker-desktop", live=previous_secrets())


def saved_config() -> dict:
    """The config of the last up(): what the running services were started with."""
    path = run_dir() / "config.json"
    if not path.exists():
        raise TestbedError(f"{path} is missing: start the testbed with `python -m testbed.services up`")
    return json.loads(path.read_text())


def previous_secrets() -> dict:
    with contextlib.suppress(OSError, ValueError):
        return json.loads((run_dir() / "config.json").read_text()).get("secrets") or {}
    return {}


# ------------------------------------------------------------------ up / down / restart / status


def up(config: dict | None = None, inventory: str | None = None) -> dict:
    """Start every service of `config` (default: the rendered one, default_config()) in dependency
    order; returns a summary (start times, RSS)."""
    if os.geteuid() != 0:
        raise TestbedError("the service testbed needs root (/etc/hosts, port 80, PostgreSQL's own user)")
    config = config or default_config(inventory)
    if Procs().entries and testbed_pids():
        log("services are already running: stopping them first")
        down()
    run_dir().mkdir(parents=True, exist_ok=True)
    pids_file().unlink(missing_ok=True)
    saved = run_dir() / "config.json"  # for restart() and the tests; holds passwords, so owner-only
    saved.touch(mode=0o600)
    os.chmod(saved, 0o600)
    saved.write_text(json.dumps(config, indent=2, default=str))
    install([n for n in COMPONENTS if n in config])
    log(f"config: {config.get('source', 'given')}")
    t_all = time.monotonic()
    write_hosts()
    procs = Procs()
    times: dict[str, float] = {}
    try:
        times["forward"] = forwarder.start(procs, config)
        if "postgres" in config:
            times.update(postgres.start(procs, config["postgres"]))
        if "s3" in config:
            times["s3"] = objectstore.start(procs, config["s3"])
        started = trino.start(procs, config["trino"]) if "trino" in config else None  # JVM warms up meanwhile
        if "hive" in config:
            times["hive-metastore"] = hive.start(procs, config["hive"])
        if started:
            times["trino"] = trino.wait(*started)
        if "jupyterhub" in config:
            times["jupyterhub"] = jupyterhub.start(procs, config["jupyterhub"])
        if "nginx" in config:
            times["nginx"] = nginx.start(procs, config["nginx"])
    except BaseException:
        log("start failed: stopping what was started")
        down()
        raise
    return _summary(config, procs, times, time.monotonic() - t_all)


def _summary(config: dict, procs: Procs, times: dict[str, float], total: float) -> dict:
    summary = {"source": config.get("source", "given"), "times": times, "total_s": total, "rss": {},
               "pids": {n: e["pid"] for n, e in procs.entries.items()}}
    for name in times:
        summary["rss"][name] = sum(tree_rss(n) for n in (("proxy", "hub") if name == "jupyterhub" else (name,)))
    summary["rss_total"] = rss_bytes(testbed_pids())
    for name, t in times.items():
        log(f"{name:<26} ready in {t:6.1f}s   rss {summary['rss'].get(name, 0) / 2**20:7.0f} MiB")
    log(f"all services ready in {total:.1f}s; total RSS {summary['rss_total'] / 2**20:.0f} MiB "
        f"({len(testbed_pids())} processes); pids in {pids_file()}")
    (run_dir() / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def down(purge: bool = False) -> None:
    """Stop every process (SIGTERM, or SIGINT for PostgreSQL, then SIGKILL), remove the hosts block."""
    try:
        stop_all()
    finally:
        remove_hosts()
    if purge and run_dir().exists():
        shutil.rmtree(run_dir())
        log(f"removed {run_dir()}")
    log("services stopped" + (" and data removed" if purge else "; data kept in " + str(run_dir())))


def restart(name: str, env: dict[str, str] | None = None, wait: bool = True) -> float:
    """Stop one service and start it again with the config of the last up(); returns its start time.
    The Hive Metastore (its restart must find the existing schema: IS_RESUME), the dbt-docs pod
    (nginx and its sync container, which must serve the docs its volume kept), Trino, and the
    JupyterHub hub alone (`env` overrides entries of its container's env; without `wait` a hub
    that exits at start is left exited, as a crash-looping pod would be)."""
    config = saved_config()
    started = time.monotonic()
    if name == "trino":
        stop_one("trino")
        trino.wait(*trino.start(Procs(), config["trino"]))
        return time.monotonic() - started
    if name == "jupyterhub-hub":
        stop_one("hub")
        jupyterhub.start_hub(Procs(), config["jupyterhub"], env, wait)
        return time.monotonic() - started
    if name in ("hive", "hive-metastore"):
        stop_one("hive-metastore")
        return hive.start(Procs(), config["hive"])
    if name in ("nginx", "dbt-docs"):
        for process in ("docs-sync", "nginx"):
            stop_one(process)
        return nginx.start(Procs(), config["nginx"])
    raise TestbedError(f"restart supports hive-metastore, dbt-docs, trino and jupyterhub-hub, not {name}")


def _addresses() -> dict[str, tuple[str, int]]:
    """process name -> the address it answers on, from the saved config."""
    with contextlib.suppress(TestbedError, ValueError):
        config = saved_config()
        out = {name: (inst["fqdn"], 5432) for name, inst in config.get("postgres", {}).get("instances", {}).items()}
        for proc, section in (("s3", "s3"), ("hive-metastore", "hive"), ("trino", "trino"), ("hub", "jupyterhub"),
                              ("nginx", "nginx")):
            if section in config and config[section].get("service"):
                s = config[section]["service"][0]
                out[proc] = (s["host"], s["target_port"])
        for s in config.get("jupyterhub", {}).get("proxy", {}).get("service", []):
            if s.get("node_port"):
                out["proxy"] = (s["host"], s["target_port"])
        return out
    return {}


def status() -> dict:
    procs = Procs()
    result = {}
    for name, e in procs.entries.items():
        result[name] = {"pid": e["pid"], "alive": pid_alive(e["pid"]), "log": e["log"]}
    for name, (host, port) in _addresses().items():
        if name in result:
            try:
                result[name]["port_open"] = probes.port_open(host, port)
            except OSError:
                result[name]["port_open"] = False
            result[name]["address"] = f"{host}:{port}"
    return result


def print_status() -> int:
    st = status()
    if not st:
        print("service testbed: not running")
        return 3
    ok = True
    for name, s in st.items():
        state = "up" if s["alive"] and s.get("port_open", True) else "DOWN"
        ok &= state == "up"
        print(f"{name:<26} {state:<5} pid {s['pid']:<8} {s.get('address', '')}")
    print(f"total RSS {rss_bytes(testbed_pids()) / 2**20:.0f} MiB")
    return 0 if ok else 1


# ------------------------------------------------------------------ CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.services", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_install = sub.add_parser("install", help="download/build what is missing")
    p_install.add_argument("--only", help=f"comma-separated subset of {','.join(COMPONENTS)}")
    p_up = sub.add_parser("up", help="start every service with the config the roles render (unless --config)")
    p_up.add_argument("--inventory", help="inventory to render (default docker-desktop)")
    p_up.add_argument("--config", help="JSON or YAML file with the config dict up() takes, instead of the render")
    p_down = sub.add_parser("down", help="stop every service and remove the /etc/hosts block")
    p_down.add_argument("--purge", action="store_true", help="also delete the run folder (data, logs)")
    sub.add_parser("status", help="what runs, where")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            t0 = time.monotonic()
            paths = install(args.only)
            for name, p in paths.items():
                print(f"{name}\t{p}")
            log(f"install done in {time.monotonic() - t0:.1f}s")
            return 0
        if args.command == "up":
            config = None
            if args.config:
                text = Path(args.config).read_text()
                if args.config.endswith((".yml", ".yaml")):
                    import yaml

                    config = yaml.safe_load(text)
                else:
                    config = json.loads(text)
            up(config, inventory=args.inventory)
            return 0
        if args.command == "down":
            down(purge=args.purge)
            return 0
        if args.command == "status":
            return print_status()
    except TestbedError as e:
        print(f"service testbed: {e}", file=sys.stderr)
        return 1
    except DatameshError as e:
        print(f"service testbed: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the render's own errors (RenderError): one clear line
        if type(e).__name__ != "RenderError":
            raise
        print(f"service testbed: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
