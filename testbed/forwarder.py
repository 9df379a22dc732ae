"""kube-proxy's part: the NodePorts on 127.0.0.1, and the Service ports that differ from the port
the program listens on (the rendered Services' port -> targetPort), served by assets/forward.py, a
small asyncio TCP forwarder run as a process of its own.

Differences from the cluster (and why): one userspace process copies bytes where kube-proxy
programs the kernel, and the NodePorts are bound on 127.0.0.1 only.
"""

from __future__ import annotations

import sys
import time

from datamesh import probes
from testbed.addresses import ip_of
from testbed.common import ASSETS, wait_until
from testbed.native import base_env
from testbed.processes import Procs, run_dir

FORWARD = ASSETS / "forward.py"


def services_of(config: dict) -> list[dict]:
    """Every Service port of the config (rendered Services: host, port, target_port, node_port)."""
    out = []
    for section in config.values():
        if not isinstance(section, dict):
            continue
        out += section.get("service") or []
        out += (section.get("proxy") or {}).get("service") or []
        for inst in (section.get("instances") or {}).values():
            out += inst.get("service") or []
    return out


def forward_pairs(config: dict) -> list[str]:
    """Each NodePort on 127.0.0.1, and each Service port that differs from the port the program
    listens on, forwarded to the program: LISTEN_HOST:PORT=TARGET_HOST:PORT."""
    pairs = []
    for s in services_of(config):
        ip = ip_of(s["host"])
        if s.get("node_port"):
            pairs.append(f"127.0.0.1:{s['node_port']}={ip}:{s['target_port']}")
        if s["port"] != s["target_port"]:
            pairs.append(f"{ip}:{s['port']}={ip}:{s['target_port']}")
    return pairs


def start(procs: Procs, config: dict) -> float:
    t0 = time.monotonic()
    pairs = forward_pairs(config)
    base = run_dir()
    p = procs.start("forward", [sys.executable, str(FORWARD), *pairs], env=base_env(), cwd=base,
                    log_file=base / "forward.log")
    wait_until("NodePort forwarder", lambda: all(probes.port_open(*_hp(pair.split("=")[0])) for pair in pairs), 10,
               p, base / "forward.log")
    return time.monotonic() - t0


def _hp(hostport: str) -> tuple[str, int]:
    h, _, port = hostport.rpartition(":")
    return h, int(port)
