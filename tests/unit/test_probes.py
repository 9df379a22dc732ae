"""datamesh/probes.py: the pure parts. The Hive Metastore call is checked byte for byte and against a
small local socket server that answers as the metastore's Thrift binary protocol does; every probe
that finds nothing at its address says which service and which address."""

from __future__ import annotations

import http.cookiejar
import http.server
import socket
import struct
import threading

import pytest

from datamesh import probes
from datamesh.errors import DatameshError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def thrift_string(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def reply(body: bytes, mtype: int = 2) -> bytes:
    """A Thrift binary-protocol message for get_all_databases: header, then the result struct."""
    return struct.pack(">i", -2147418112 | mtype) + thrift_string(b"get_all_databases") + struct.pack(">i", 1) + body


def success(*names: bytes) -> bytes:
    """Result struct: field 0 (success), list<string> of `names`, then STOP."""
    items = b"".join(thrift_string(n) for n in names)
    return bytes([15]) + struct.pack(">h", 0) + bytes([11]) + struct.pack(">i", len(names)) + items + b"\x00"


class OneShotServer:
    """Accepts one connection on 127.0.0.1, records what the client sent, answers `answer` in
    small chunks (as a slow network would) and closes."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.received = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(5)
            expected = len(probes.get_all_databases_call())
            while len(self.received) < expected:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                self.received += chunk
            try:
                for i in range(0, len(self.answer), 7):
                    conn.sendall(self.answer[i:i + 7])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client may hang up as soon as it has read enough to decide
        self.sock.close()


def test_the_get_all_databases_call_is_a_strict_binary_protocol_message():
    assert probes.get_all_databases_call() == (
        b"\x80\x01\x00\x01"                 # version 1, message type CALL
        b"\x00\x00\x00\x11get_all_databases"  # method name
        b"\x00\x00\x00\x01"                 # seqid
        b"\x00"                             # empty args struct: STOP
    )


def test_the_reply_is_decoded_into_the_database_names():
    data = reply(success(b"default", b"sales", "données".encode()))

    def need(n: int, _buf=[data]) -> bytes:
        out, _buf[0] = _buf[0][:n], _buf[0][n:]
        assert len(out) == n
        return out

    assert probes.read_get_all_databases_reply(need) == ["default", "sales", "données"]


def test_the_metastore_is_asked_and_its_answer_read_over_a_socket():
    server = OneShotServer(reply(success(b"default", b"e2e_1234")))
    assert probes.thrift_get_all_databases("127.0.0.1", server.port) == ["default", "e2e_1234"]
    server.thread.join(5)
    assert server.received == probes.get_all_databases_call()


def test_an_exception_reply_names_the_metastore_and_its_address():
    meta_exception = bytes([12]) + struct.pack(">h", 1) + bytes([11]) + struct.pack(">h", 1) + thrift_string(b"boom") + b"\x00\x00"
    server = OneShotServer(reply(meta_exception))
    with pytest.raises(probes.ProbeError, match=rf"Hive Metastore at 127\.0\.0\.1:{server.port} .*field 1 of type 12"):
        probes.thrift_get_all_databases("127.0.0.1", server.port)


def test_a_thrift_exception_message_is_not_taken_for_a_reply():
    server = OneShotServer(reply(b"\x00", mtype=3))
    with pytest.raises(probes.ProbeError, match="message type 3 instead of REPLY"):
        probes.thrift_get_all_databases("127.0.0.1", server.port)


def test_a_connection_closed_mid_reply_is_an_error():
    server = OneShotServer(reply(success(b"default"))[:20])
    with pytest.raises(probes.ProbeError, match="closed mid-reply"):
        probes.thrift_get_all_databases("127.0.0.1", server.port)


def test_every_probe_names_the_service_and_address_it_could_not_reach():
    port = free_port()  # nothing listens there
    cases = [
        (lambda: probes.thrift_get_all_databases("127.0.0.1", port, timeout=2), f"Hive Metastore at 127.0.0.1:{port}"),
        (lambda: probes.trino_query(f"http://127.0.0.1:{port}", "SELECT 1"), f"Trino at http://127.0.0.1:{port}"),
        (lambda: probes.hub_login(f"http://127.0.0.1:{port}", "admin", "admin"), f"JupyterHub at http://127.0.0.1:{port}"),
        (lambda: probes.postgres_query("127.0.0.1", port, "admin", "pw", "sales_db", "SELECT 1", timeout=2),
         f"PostgreSQL at 127.0.0.1:{port}"),
        (lambda: probes.s3_buckets(f"127.0.0.1:{port}", "user", "secret"), f"object store at 127.0.0.1:{port}"),
        (lambda: probes.http_get(f"http://127.0.0.1:{port}/"), f"GET http://127.0.0.1:{port}/"),
        (lambda: probes.trino_started(f"http://127.0.0.1:{port}"), f"GET http://127.0.0.1:{port}/v1/info"),
        (lambda: probes.hub_api(f"http://127.0.0.1:{port}", http.cookiejar.CookieJar(), "/proxy"),
         f"JupyterHub at http://127.0.0.1:{port}"),
    ]
    for call, names in cases:
        with pytest.raises(probes.ProbeError) as caught:
            call()
        assert names in str(caught.value)
        assert isinstance(caught.value, DatameshError) and "\n" not in str(caught.value).strip()
    assert probes.port_open("127.0.0.1", port) is False


def test_a_hub_that_does_not_answer_is_not_a_refused_login():
    """verify's wrong-password check passes only on LoginRefused: no answer must not look like one."""
    with pytest.raises(probes.ProbeError) as caught:
        probes.hub_login(f"http://127.0.0.1:{free_port()}", "admin", "wrong")
    assert not isinstance(caught.value, probes.LoginRefused)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        status = 404 if self.path == "/missing" else 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(f"{self.path} {self.headers.get('X-Probe', '')}".encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_http_get_returns_every_status_with_its_body(http_server):
    assert probes.http_get(f"{http_server}/ok", {"X-Probe": "1"}) == (200, b"/ok 1")
    assert probes.http_get(f"{http_server}/missing") == (404, b"/missing ")
    host, port = http_server.removeprefix("http://").split(":")
    assert probes.port_open(host, int(port)) is True


@pytest.mark.parametrize("endpoint, netloc, secure", [
    ("minio.data-platform.svc.cluster.local:9000", "minio.data-platform.svc.cluster.local:9000", False),
    ("http://127.0.0.1:30082", "127.0.0.1:30082", False),
    ("https://s3.example.org", "s3.example.org", True),
])
def test_the_s3_client_takes_an_address_with_or_without_scheme(endpoint, netloc, secure):
    client = probes.s3_client(endpoint, "user", "secret")
    assert client._base_url.host == netloc and client._base_url.is_https == secure
