"""The service testbed's names and addresses: each in-cluster name gets its own loopback address.

All of 127/8 is loopback on Linux, so a program binds 127.42.1.x without an interface alias; a
marked block of /etc/hosts (`# BEGIN datamesh testbed` ... `# END datamesh testbed`) makes the
names resolve, and `remove_hosts()` takes exactly that block out again.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from testbed.common import TestbedError

HOSTS: dict[str, str] = {
    "postgres-sales.data-platform.svc.cluster.local": "127.42.1.1",
    "postgres-marketing.data-platform.svc.cluster.local": "127.42.1.2",
    "postgres-hive.data-platform.svc.cluster.local": "127.42.1.3",
    "postgres.sales-domain.svc.cluster.local": "127.42.1.4",
    "postgres.marketing-domain.svc.cluster.local": "127.42.1.5",
    "minio.data-platform.svc.cluster.local": "127.42.1.10",
    "hive-metastore.data-platform.svc.cluster.local": "127.42.1.11",
    "trino-coordinator.data-platform.svc.cluster.local": "127.42.1.12",
    "hub.jupyterhub.svc.cluster.local": "127.42.1.20",
    "proxy-api.jupyterhub.svc.cluster.local": "127.42.1.21",
    "proxy-public.jupyterhub.svc.cluster.local": "127.42.1.22",
    "dbt-docs.data-platform.svc.cluster.local": "127.42.1.30",
}

HOSTS_FILE = Path(os.environ.get("DATAMESH_HOSTS_FILE", "/etc/hosts"))
HOSTS_BEGIN = "# BEGIN datamesh testbed"
HOSTS_END = "# END datamesh testbed"


def ip_of(host: str) -> str:
    """The loopback address the testbed gives an in-cluster name."""
    if host not in HOSTS:
        raise TestbedError(f"the testbed has no loopback address for {host}; add it to HOSTS in {__file__}")
    return HOSTS[host]


def check_loopback(ip: str) -> None:
    """Binding 127.x.y.z works without an interface alias on Linux; fail early and clearly if not."""
    with socket.socket() as s:
        try:
            s.bind((ip, 0))
        except OSError as e:
            raise TestbedError(f"cannot bind {ip} ({e}); this kernel does not route all of 127/8 to lo: "
                               f"add it with `ip addr add {ip}/8 dev lo`") from e


def hosts_block() -> str:
    lines = [HOSTS_BEGIN]
    for fqdn, ip in HOSTS.items():
        short = fqdn.removesuffix(".svc.cluster.local")  # name.namespace, as pods in other namespaces write it
        lines.append(f"{ip}\t{fqdn} {short}.svc {short}")
    lines.append(HOSTS_END)
    return "\n".join(lines) + "\n"


def _strip_block(text: str) -> str:
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == HOSTS_BEGIN:
            skipping = True
            continue
        if skipping and line.strip() == HOSTS_END:
            skipping = False
            continue
        if not skipping:
            out.append(line)
    return "".join(out)


def write_hosts() -> None:
    text = _strip_block(HOSTS_FILE.read_text())
    if text and not text.endswith("\n"):
        text += "\n"
    # written in place: /etc/hosts is often a bind mount that cannot be replaced by rename
    with open(HOSTS_FILE, "r+") as fh:
        fh.seek(0)
        fh.write(text + hosts_block())
        fh.truncate()


def remove_hosts() -> None:
    if not HOSTS_FILE.exists():
        return
    text = HOSTS_FILE.read_text()
    stripped = _strip_block(text)
    if stripped != text:
        with open(HOSTS_FILE, "r+") as fh:
            fh.seek(0)
            fh.write(stripped)
            fh.truncate()
