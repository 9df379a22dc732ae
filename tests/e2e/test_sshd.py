"""The test sshd (testbed/sshd.py): testinfra's ssh backend logs in as root with the folder's key and
checks the folder's host key; the NodePorts' SSH forward (datamesh/nodeports.py) carries many
concurrent connections through it; nothing of it (server, sessions, ssh clients) is left once it stops."""

from __future__ import annotations

import http.server
import os
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import testinfra

from datamesh.errors import DatameshError
from datamesh.nodeports import NodePorts, free_port
from testbed.common import pid_alive, runs_from
from testbed.sshd import HOST, sessions, start, stop


def mentioning(marker) -> set[int]:
    """Live processes whose command line mentions marker (ssh clients and masters, the server)."""
    me = os.getpid()
    return {int(d) for d in os.listdir("/proc")
            if d.isdigit() and int(d) != me and runs_from(int(d), marker) and pid_alive(int(d))}


def banner(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.settimeout(5)
        return s.recv(256)


def test_sshd_serves_testinfra_and_the_nodeports_forward(tmp_path):
    sshd = start(tmp_path / "sshd")
    try:
        host = testinfra.get_host(sshd.url)
        assert host.backend.NAME == "ssh"
        out = host.run("id -u")
        assert (out.rc, out.stdout.strip()) == (0, "0"), out
        assert host.addr(HOST).port(sshd.port).is_reachable
        assert not host.addr(HOST).port(free_port()).is_reachable
        assert not mentioning(sshd.config), "testinfra left ssh processes (a ControlPersist master?)"

        forward = NodePorts({"hosts": {"nodeports": sshd.url, "address": HOST}, "nodeports": {"ssh": sshd.port}})
        try:
            assert banner(int(forward.url("ssh").rsplit(":", 1)[1])).startswith(b"SSH-2.0")
            logins = sessions(sshd)
            assert logins, "the forward's login has no sshd session process"
        finally:
            forward.close()
        assert not mentioning(sshd.config), "NodePorts.close() left its ssh client running"
    finally:
        stop(sshd)
    stop(sshd)  # a second stop is harmless

    assert not pid_alive(sshd.pid)
    assert not mentioning(sshd.config.parent)
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex((HOST, sshd.port)) != 0


class _Body(http.server.BaseHTTPRequestHandler):
    BODY = os.urandom(48 * 1024)

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args):
        pass


def test_the_nodeports_forward_carries_many_concurrent_connections(tmp_path):
    """`invoke verify` over SSH sends hundreds of short connections from parallel checks. (fabric's
    forward_local, used before, passes this one; it lost its transport only under Trino's traffic:
    tests/e2e/test_verify.py's soak test reproduces that.)"""
    server = http.server.ThreadingHTTPServer((HOST, 0), _Body)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sshd = start(tmp_path / "sshd")
    forward = NodePorts({"hosts": {"nodeports": sshd.url, "address": HOST}, "nodeports": {"web": server.server_port}})
    try:
        url = forward.url("web", "/")

        def fetch(_: int) -> int:
            with urllib.request.urlopen(url, timeout=10) as r:
                return len(r.read())

        with ThreadPoolExecutor(6) as pool:
            sizes = list(pool.map(fetch, range(1200)))
        assert sizes == [len(_Body.BODY)] * 1200
    finally:
        forward.close()
        stop(sshd)
        server.shutdown()


def test_a_refused_ssh_login_for_the_nodeports_is_one_sentence(tmp_path):
    sshd = start(tmp_path / "sshd")
    stop(sshd)  # nothing listens on its port any more
    forward = NodePorts({"hosts": {"nodeports": sshd.url, "address": HOST}, "nodeports": {"ssh": sshd.port}})
    with pytest.raises(DatameshError, match=r"cannot forward the NodePorts through ssh://root@127.0.0.1:\d+ over SSH "
                                            r"\(hosts.nodeports\): .*[Cc]onnection refused.*works without a prompt"):
        forward.url("ssh")
    forward.close()
