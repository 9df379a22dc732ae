"""JupyterHub 4.1.6 (PyPI, with jupyterhub-kubespawner and jupyterlab, in a venv of its own) and
configurable-http-proxy 4.6.1 (npm): the hub on hub.jupyterhub (8081), the proxy on proxy-api
(8001) and proxy-public (80 -> 8000, NodePort 30080).

Differences from the pod (and why): the role's jupyterhub_config.py is loaded unchanged with the
hub container's env, then a testbed file sets a local spawner (jupyterhub's
SimpleLocalProcessSpawner, single-user servers as root with --allow-root, homes in the run folder),
binds the hub to its service address instead of 0.0.0.0 and maps /srv/jupyterhub to the run
folder. KubeSpawner is installed so the config's KubeSpawner settings load. The proxy runs the
proxy pod's command with --ip/--api-ip narrowed from 0.0.0.0 to the proxy-public and proxy-api
addresses.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from string import Template

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import TestbedError, build_atomically, component_dir, logger, run, wait_until
from testbed.native import base_env, native_env, native_path, place_config, with_flag
from testbed.processes import MARKER_VAR, Procs, run_dir

JUPYTERHUB_VERSION = "4.1.6"
KUBESPAWNER_VERSION = "6.2.0"
JUPYTERLAB_VERSION = "4.2.5"
CHP_VERSION = "4.6.1"
HUB_CONFIG_POD = "/usr/local/etc/jupyterhub/jupyterhub_config.py"  # what the k8s-hub image runs

log = logger("services")


def cached() -> bool:
    return component_dir("jupyterhub", JUPYTERHUB_VERSION).exists()


def install() -> Path:
    def build(tmp: Path) -> None:
        venv = tmp / "venv"
        # the venv is built here and renamed; entry points are run as `python -m ...`, so the
        # absolute shebangs of its bin/ scripts (pointing at the temp path) are never used
        run([sys.executable, "-m", "venv", str(venv)], capture=True)
        py = str(venv / "bin" / "python")
        log(f"pip install jupyterhub=={JUPYTERHUB_VERSION} jupyterhub-kubespawner=={KUBESPAWNER_VERSION} "
            f"jupyterlab=={JUPYTERLAB_VERSION}")
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"jupyterhub=={JUPYTERHUB_VERSION}", f"jupyterhub-kubespawner=={KUBESPAWNER_VERSION}",
             f"jupyterlab=={JUPYTERLAB_VERSION}"], capture=True, timeout=1800)
        if not shutil.which("npm") or not shutil.which("node"):
            raise TestbedError("node and npm are needed for configurable-http-proxy (apt-get install nodejs npm)")
        log(f"npm install configurable-http-proxy@{CHP_VERSION}")
        (tmp / "chp").mkdir()
        run(["npm", "install", "--prefix", str(tmp / "chp"), "--no-audit", "--no-fund", "--omit=dev",
             "--loglevel=error", f"configurable-http-proxy@{CHP_VERSION}"], capture=True, timeout=1800)

    return build_atomically(component_dir("jupyterhub", JUPYTERHUB_VERSION), build)


HUB_OVERRIDES = Template('''\
# Written by testbed/jupyterhub.py: the caller's jupyterhub_config.py, unchanged, then the
# testbed's few changes (a local spawner instead of KubeSpawner, the hub bound to its service
# address instead of 0.0.0.0, the pod's /srv/jupyterhub mapped to the run folder).
c = get_config()  # noqa: F821
load_subconfig($caller)  # noqa: F821

c.JupyterHub.hub_ip = $hub_ip
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = $homes + "/{username}"
c.Spawner.cmd = [$python, "-m", "jupyterhub.singleuser"]
c.Spawner.args = ["--allow-root"]
c.Spawner.environment = {$marker_var: $marker}
c.ConfigurableHTTPProxy.should_start = False

for _name in ("db_url", "cookie_secret_file", "pid_file"):
    _value = c.JupyterHub.get(_name)
    if isinstance(_value, str) and "/srv/jupyterhub" in _value:
        setattr(c.JupyterHub, _name, _value.replace("/srv/jupyterhub", $srv))
''')


def start(procs: Procs, cfg: dict) -> float:
    """The proxy with the proxy pod's command, then the hub with the role's jupyterhub_config.py
    and the hub container's env."""
    t0 = time.monotonic()
    home = install()
    base = run_dir() / "jupyterhub"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    place_config(cfg, base)
    caller = native_path(HUB_CONFIG_POD, paths, base)
    srv = native_path("/srv/jupyterhub", paths, base)
    homes = base / "home"
    for d in (srv, homes):
        d.mkdir(parents=True, exist_ok=True)
    hub_host = cfg["service"][0]["host"]
    python = str(home / "venv" / "bin" / "python")
    wrapper = base / "testbed_config.py"
    wrapper.write_text(HUB_OVERRIDES.substitute(
        caller=repr(str(caller)), hub_ip=repr(ip_of(hub_host)), homes=repr(str(homes)), python=repr(python),
        marker_var=repr(MARKER_VAR), marker=repr(str(run_dir())), srv=repr(str(srv))))

    proxy = cfg["proxy"]
    public = next(s for s in proxy["service"] if s.get("node_port") or s["port"] == 80)
    api = next(s for s in proxy["service"] if s is not public)
    for host in (hub_host, public["host"], api["host"]):
        check_loopback(ip_of(host))
    chp = home / "chp" / "node_modules" / "configurable-http-proxy" / "bin" / "configurable-http-proxy"
    cmd = list(proxy.get("command") or []) + list(proxy.get("args") or [])
    if not cmd or Path(cmd[0]).name != "configurable-http-proxy":
        raise TestbedError(f"the proxy container's command is {cmd[:1]}, not configurable-http-proxy")
    cmd = with_flag(with_flag(cmd[1:], "--ip", ip_of(public["host"])), "--api-ip", ip_of(api["host"]))
    proxy_env = base_env(native_env(proxy, base))
    token = proxy_env.get("CONFIGPROXY_AUTH_TOKEN", "")
    pp = procs.start("proxy", ["node", str(chp), *cmd], env=proxy_env, cwd=base, log_file=base / "proxy.log")
    wait_until("configurable-http-proxy API", lambda: probes.http_get(
        f"http://{api['host']}:{api['target_port']}/api/routes", {"Authorization": f"token {token}"})[0] == 200,
        30, pp, base / "proxy.log")
    hub_env = base_env(native_env(cfg, base))
    ph = procs.start("hub", [python, "-m", "jupyterhub", "--config", str(wrapper)], env=hub_env, cwd=srv,
                     log_file=base / "hub.log")

    def hub_ready() -> bool:
        status, body = probes.http_get(f"http://{public['host']}:{public['target_port']}/hub/api")
        return status == 200 and "version" in json.loads(body)

    wait_until("JupyterHub /hub/api through the proxy", hub_ready, 120, ph, base / "hub.log", interval=0.5)
    return time.monotonic() - t0
