"""nginx for the dbt docs: dbt-docs.data-platform (80 -> 8080, NodePort 30084), and the pod's
sync container, which copies the docs `invoke seed` publishes in the object store into the site.

Differences from the pod (and why): Debian's nginx-light (1.22) instead of nginx-unprivileged 1.27
(alpine); the image's nginx.conf is replaced by an equivalent one (NGINX_MAIN) that includes the
server configs, whose `listen` lines are narrowed to the service address (IPv6 listens dropped)
and whose pod paths (/usr/share/nginx/html, /usr/share/nginx/placeholder) point at the run folder.
The sync container's rendered script runs unchanged with the AWS CLI v1 from PyPI (the bucket
Job's, testbed/objectstore.py) instead of the image's v2; its site and HOME are run folders.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from string import Template

from datamesh import probes
from testbed.addresses import check_loopback, ip_of
from testbed.common import apt_install, logger, run, wait_until
from testbed.native import base_env, native_command, native_env, native_path, place_config, translate_text
from testbed.objectstore import install_awscli
from testbed.processes import Procs, run_dir

NGINX = Path("/usr/sbin/nginx")
NGINX_CONF_D_POD = "/etc/nginx/conf.d"
NGINX_MAIN = Template('''\
# Written by testbed/nginx.py, in place of the image's /etc/nginx/nginx.conf.
user root;
worker_processes 1;
pid $base/nginx.pid;
error_log $base/logs/error.log notice;
events { worker_connections 256; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $base/logs/access.log;
    client_body_temp_path $base/tmp/body;
    proxy_temp_path $base/tmp/proxy;
    fastcgi_temp_path $base/tmp/fastcgi;
    uwsgi_temp_path $base/tmp/uwsgi;
    scgi_temp_path $base/tmp/scgi;
    sendfile on;
    keepalive_timeout 65;
    include $conf_d/*.conf;
}
''')

log = logger("services")


def install() -> Path:
    if not NGINX.exists():
        apt_install("nginx-light", log=log)
    return NGINX


def cached() -> bool:
    return NGINX.exists()


def nginx_server_conf(text: str, ip: str, paths: dict[str, str], base: Path) -> str:
    """The caller's server config with the pod-only parts mapped: listen lines narrowed to the
    service address (IPv6 listens dropped) and the pod's paths pointed at the run folder."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(\s*)listen\s+(\S+)(.*);\s*(#.*)?$", line)
        if m:
            addr = m.group(2)
            if addr.startswith("["):
                out.append(f"{m.group(1)}# testbed: IPv6 listen dropped: {line.strip()}")
                continue
            port = addr.rsplit(":", 1)[-1]
            if port.isdigit():
                out.append(f"{m.group(1)}listen {ip}:{port}{m.group(3)};  # testbed: was {addr}")
                continue
        out.append(line)
    return translate_text("\n".join(out) + "\n", paths, base)


def start(procs: Procs, cfg: dict) -> float:
    t0 = time.monotonic()
    nginx = install()
    base = run_dir() / "nginx"
    base.mkdir(parents=True, exist_ok=True)
    paths = cfg["paths"]
    files = place_config(cfg, base)
    for sub in ("logs", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    svc = cfg["service"][0]
    ip = ip_of(svc["host"])
    check_loopback(ip)
    conf_d = base / "testbed-conf.d"  # the server configs as nginx here reads them
    if conf_d.exists():
        shutil.rmtree(conf_d)
    conf_d.mkdir()
    for pod, target in files.items():
        if pod.startswith(NGINX_CONF_D_POD + "/") and pod.endswith(".conf"):
            (conf_d / target.name).write_text(nginx_server_conf(target.read_text(), ip, paths, base))
    (base / "nginx.conf").write_text(NGINX_MAIN.substitute(base=str(base), conf_d=str(conf_d)))
    run([str(nginx), "-t", "-q", "-p", str(base), "-c", str(base / "nginx.conf")], capture=True)
    p = procs.start("nginx", [str(nginx), "-p", str(base), "-c", str(base / "nginx.conf"), "-g", "daemon off;"],
                    env=base_env(), cwd=base, log_file=base / "logs" / "nginx.out")
    wait_until(f"nginx {svc['host']}:{svc['target_port']}",
               lambda: probes.http_get(f"http://{svc['host']}:{svc['target_port']}/")[0] == 200, 20, p,
               base / "logs" / "error.log")
    start_sync(procs, cfg["sync"], base)
    return time.monotonic() - t0


def start_sync(procs: Procs, sync: dict, base: Path) -> None:
    """The sync container: its rendered command and env, the AWS CLI from PyPI first on PATH."""
    paths = sync["paths"]
    for pod_dir in paths:
        native_path(pod_dir, paths, base).mkdir(parents=True, exist_ok=True)
    env = base_env(native_env(sync, base))
    env["PATH"] = f"{install_awscli() / 'bin'}{os.pathsep}{env['PATH']}"
    procs.start("docs-sync", native_command(sync, base), env=env, cwd=base, log_file=base / "logs" / "sync.log")
