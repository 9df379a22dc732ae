"""The test sshd (testbed/sshd.py): testinfra's ssh backend and fabric both log in as root with the
folder's key and check the folder's host key; fabric's local forward reaches a port through it;
nothing of it (server, sessions, ssh masters) is left once it stops."""

from __future__ import annotations

import os
import socket

import fabric
import testinfra

from testbed.common import pid_alive, runs_from, wait_until
from datamesh.nodeports import free_port
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


def test_sshd_serves_testinfra_and_fabric(tmp_path):
    sshd = start(tmp_path / "sshd")
    try:
        host = testinfra.get_host(sshd.url)
        assert host.backend.NAME == "ssh"
        out = host.run("id -u")
        assert (out.rc, out.stdout.strip()) == (0, "0"), out
        assert host.addr(HOST).port(sshd.port).is_reachable
        assert not host.addr(HOST).port(free_port()).is_reachable
        assert not mentioning(sshd.config), "testinfra left ssh processes (a ControlPersist master?)"

        conn = fabric.Connection(HOST, user="root", port=sshd.port, connect_kwargs={"key_filename": str(sshd.identity)},
                                 config=fabric.Config(runtime_ssh_path=str(sshd.config)))
        with conn:
            assert conn.run("true", hide=True, in_stream=False).ok
            server_key = conn.transport.get_remote_server_key()
            assert f"{server_key.get_name()} {server_key.get_base64()}" in sshd.known_hosts.read_text()
            local = free_port()
            with conn.forward_local(local_port=local, local_host=HOST, remote_port=sshd.port, remote_host=HOST):
                # the tunnel's listener comes up in a thread of its own, just after the block starts
                got = wait_until("the forwarded port", lambda: banner(local), 5, interval=0.1, errors=(OSError,))
                assert got.startswith(b"SSH-2.0"), got
            logins = sessions(sshd)
            assert logins, "fabric's login has no sshd session process"
            stop(sshd)  # with fabric still logged in: its session ends too
            assert not any(pid_alive(p) for p in logins)
    finally:
        stop(sshd)
    stop(sshd)  # a second stop is harmless

    assert not pid_alive(sshd.pid)
    assert not mentioning(sshd.config.parent)
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex((HOST, sshd.port)) != 0
