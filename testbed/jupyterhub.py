"""JupyterHub 4.1.6 and configurable-http-proxy 4.6.1 (npm): the hub on hub.jupyterhub (8081), the
proxy on proxy-api (8001) and proxy-public (80 -> 8000, NodePort 30080).

The hub and the users' servers run in one venv holding the user image's Python environment
(files/images/jupyterhub-dbt: requirements.txt with constraints.txt, so JupyterHub, JupyterLab,
dbt, pandas, the clients), plus jupyterhub-kubespawner so the config's KubeSpawner settings load.

Differences from the pod (and why): the role's jupyterhub_config.py is loaded unchanged with the
hub container's env, then a testbed file sets a local spawner (jupyterhub's
SimpleLocalProcessSpawner, single-user servers as root with --allow-root, homes in the run folder),
binds the hub to its service address instead of 0.0.0.0 and maps /srv/jupyterhub to the run
folder. What KubeSpawner would put in the user's pod is done for the local server: the init
containers' commands run before it starts (pre_spawn_hook), with their mounts mapped to the
user's home and to the starter files' ConfigMap written out; the environment's secretKeyRefs are
resolved from the rendered Secret and `{username}` is expanded, and the server's Secret volume
(Trino's CA) is written beside the homes, its pod path in the environment replaced by that file. The proxy runs the proxy pod's
command with --ip/--api-ip narrowed from 0.0.0.0 to the proxy-public and proxy-api addresses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from string import Template

from datamesh import ROOT

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import TestbedError, build_atomically, component_dir, logger, run, wait_until
from testbed.native import base_env, native_env, native_path, place_config, with_flag
from testbed.processes import MARKER_VAR, Procs, run_dir

JUPYTERHUB_VERSION = "4.1.6"
KUBESPAWNER_VERSION = "6.2.0"
CHP_VERSION = "4.6.1"
HUB_CONFIG_POD = "/usr/local/etc/jupyterhub/jupyterhub_config.py"  # what the k8s-hub image runs
USER_IMAGE = ROOT / "files" / "images" / "jupyterhub-dbt"  # requirements.txt and constraints.txt

log = logger("services")


def version() -> str:
    """The cache key: JupyterHub's release and a digest of the user image's Python environment."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "constraints.txt"):
        digest.update((USER_IMAGE / name).read_bytes())
    return f"{JUPYTERHUB_VERSION}-{digest.hexdigest()[:10]}"


def cached() -> bool:
    return component_dir("jupyterhub", version()).exists()


def install() -> Path:
    def build(tmp: Path) -> None:
        venv = tmp / "venv"
        # the venv is built here and renamed; entry points are run as `python -m ...`, so the
        # absolute shebangs of its bin/ scripts (pointing at the temp path) are never used
        run([sys.executable, "-m", "venv", str(venv)], capture=True)
        py = str(venv / "bin" / "python")
        log(f"pip install the user image's environment ({USER_IMAGE.relative_to(ROOT)}) and "
            f"jupyterhub-kubespawner=={KUBESPAWNER_VERSION}")
        run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-r", str(USER_IMAGE / "requirements.txt"), "-c", str(USER_IMAGE / "constraints.txt"),
             f"jupyterhub-kubespawner=={KUBESPAWNER_VERSION}"], capture=True, timeout=1800)
        if not shutil.which("npm") or not shutil.which("node"):
            raise TestbedError("node and npm are needed for configurable-http-proxy (apt-get install nodejs npm)")
        log(f"npm install configurable-http-proxy@{CHP_VERSION}")
        (tmp / "chp").mkdir()
        run(["npm", "install", "--prefix", str(tmp / "chp"), "--no-audit", "--no-fund", "--omit=dev",
             "--loglevel=error", f"configurable-http-proxy@{CHP_VERSION}"], capture=True, timeout=1800)

    return build_atomically(component_dir("jupyterhub", version()), build)


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
c.ConfigurableHTTPProxy.should_start = False

# What KubeSpawner would put in the user's pod, for the local server.
import json as _json
import os as _os
import subprocess as _subprocess

_secret = _json.loads($user_secret)
_template = $template


_volumes = {v["name"]: v for v in c.KubeSpawner.volumes}
# The server's Secret volumes (Trino's CA), written out once: pod path -> local file.
_secret_files = {}
for _m in c.KubeSpawner.volume_mounts:
    _v = _volumes[_m["name"]]
    if "secret" in _v:
        if _v["secret"]["secretName"] != _secret["name"]:
            raise RuntimeError(f"testbed: the server mounts Secret {_v['secret']['secretName']}, not {_secret['name']}")
        for _item in _v["secret"]["items"]:
            _local = _os.path.join($homes + "-secrets", _m["name"], _item["path"])
            _os.makedirs(_os.path.dirname(_local), exist_ok=True)
            with open(_local, "w") as _fh:
                _fh.write(_secret["data"][_item["key"]])
            _secret_files[_m["mountPath"] + "/" + _item["path"]] = _local


def _env_value(key, value):
    if isinstance(value, dict):
        ref = value["valueFrom"]["secretKeyRef"]
        if ref["name"] != _secret["name"]:
            raise RuntimeError(f"testbed: the server's env {key} reads Secret {ref['name']}, not {_secret['name']}")
        return _secret["data"][ref["key"]]
    value = _secret_files.get(value, value)
    return lambda spawner, value=value: value.format(username=spawner.user.name)


c.Spawner.environment = {**{k: _env_value(k, v) for k, v in c.KubeSpawner.environment.items()},
                         $marker_var: $marker}


def _run_init_containers(spawner):
    home = $homes + "/" + spawner.user.name
    _os.makedirs(home, exist_ok=True)
    for init in c.KubeSpawner.init_containers:
        mounts = {}
        for m in init.get("volumeMounts", []):
            volume = _volumes[m["name"]]
            if "persistentVolumeClaim" in volume:
                mounts[m["mountPath"]] = home
            elif "configMap" in volume:
                mounts[m["mountPath"]] = _template
            else:
                raise RuntimeError(f"testbed: init container {init['name']} mounts {m['name']}, which it cannot map")

        def local(text):
            for pod_path in sorted(mounts, key=len, reverse=True):
                text = text.replace(pod_path, mounts[pod_path])
            return text

        env = {"PATH": _os.environ["PATH"], "LANG": "C.UTF-8"}
        env.update({e["name"]: local(e["value"]) for e in init.get("env", [])})
        done = _subprocess.run([local(a) for a in init["command"] + init.get("args", [])], env=env,
                               capture_output=True, text=True, timeout=120)
        spawner.log.info("testbed: init container %s: %s", init["name"], (done.stdout + done.stderr).strip())
        if done.returncode != 0:
            raise RuntimeError(f"init container {init['name']} failed: {done.stderr.strip()}")


c.Spawner.pre_spawn_hook = _run_init_containers

for _name in ("db_url", "cookie_secret_file", "pid_file"):
    _value = c.JupyterHub.get(_name)
    if isinstance(_value, str) and "/srv/jupyterhub" in _value:
        setattr(c.JupyterHub, _name, _value.replace("/srv/jupyterhub", $srv))
''')


def start(procs: Procs, cfg: dict) -> float:
    """The proxy with the proxy pod's command, then the hub with the role's jupyterhub_config.py
    and the hub container's env."""
    t0 = time.monotonic()
    start_proxy(procs, cfg)
    start_hub(procs, cfg)
    return time.monotonic() - t0


def _services(cfg: dict) -> tuple[dict, dict, dict]:
    """The hub's, the proxy's public and the proxy's API Service entries of the saved config."""
    proxy = cfg["proxy"]
    public = next(s for s in proxy["service"] if s.get("node_port") or s["port"] == 80)
    api = next(s for s in proxy["service"] if s is not public)
    return cfg["service"][0], public, api


def start_proxy(procs: Procs, cfg: dict) -> None:
    """configurable-http-proxy with the proxy pod's command and env, until its API answers its token."""
    home = install()
    base = run_dir() / "jupyterhub"
    base.mkdir(parents=True, exist_ok=True)
    hub, public, api = _services(cfg)
    for host in (hub["host"], public["host"], api["host"]):
        check_loopback(ip_of(host))
    proxy = cfg["proxy"]
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


def start_hub(procs: Procs, cfg: dict, env: dict[str, str] | None = None, wait: bool = True) -> None:
    """The hub with the role's jupyterhub_config.py and the hub container's env (`env` overrides
    entries of it: a fault such as a wrong proxy token); with `wait`, until /hub/api answers
    through the proxy."""
    home = install()
    base = run_dir() / "jupyterhub"
    paths = cfg["paths"]
    place_config(cfg, base)
    caller = native_path(HUB_CONFIG_POD, paths, base)
    srv = native_path("/srv/jupyterhub", paths, base)
    homes = base / "home"
    for d in (srv, homes):
        d.mkdir(parents=True, exist_ok=True)
    template = write_template(cfg["home_template"], base / "home-template")
    hub, public, _ = _services(cfg)
    python = str(home / "venv" / "bin" / "python")
    wrapper = base / "testbed_config.py"
    wrapper.write_text(HUB_OVERRIDES.substitute(
        caller=repr(str(caller)), hub_ip=repr(ip_of(hub["host"])), homes=repr(str(homes)), python=repr(python),
        marker_var=repr(MARKER_VAR), marker=repr(str(run_dir())), srv=repr(str(srv)),
        user_secret=repr(json.dumps(cfg["user_secret"])), template=repr(str(template))))
    hub_env = {**base_env(native_env(cfg, base)), **(env or {})}
    ph = procs.start("hub", [python, "-m", "jupyterhub", "--config", str(wrapper)], env=hub_env, cwd=srv,
                     log_file=base / "hub.log")

    def hub_ready() -> bool:
        status, body = probes.http_get(f"http://{public['host']}:{public['target_port']}/hub/api")
        return status == 200 and "version" in json.loads(body)

    if wait:
        wait_until("JupyterHub /hub/api through the proxy", hub_ready, 120, ph, base / "hub.log", interval=0.5)


def write_template(configmap: dict, folder: Path) -> Path:
    """The starter files' ConfigMap as its volume shows it: one file per key."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for key, text in (configmap.get("data") or {}).items():
        (folder / key).write_text(text)
    for key, encoded in (configmap.get("binaryData") or {}).items():
        (folder / key).write_bytes(base64.b64decode(encoded))
    return folder
