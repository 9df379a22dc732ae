"""TCP forwarder for the service testbed: NodePorts and Service ports that a program cannot bind itself.

    python forward.py LISTEN_HOST:PORT=TARGET_HOST:PORT [...]

One asyncio process, one listener per pair, bytes copied both ways until either side closes.
It stands in for kube-proxy, with pairs testbed/forwarder.py derives from the rendered Services: each
NodePort (30080 -> proxy-public's CHP on 8000, 30081 -> trino-public:8443 (or trino-coordinator:8080 without auth), 30084 -> nginx on
8080) and each Service port that differs from its targetPort (proxy-public:80, dbt-docs:80).
Standard library only; started by testbed/forwarder.py, stopped with the other services.
"""

from __future__ import annotations

import asyncio
import signal
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            pass


def _handler(target_host: str, target_port: int):
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
        for w in (client_writer, upstream_writer):
            try:
                w.close()
            except OSError:
                pass

    return handle


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        lhost, lport = _split(listen)
        thost, tport = _split(target)
        servers.append(await asyncio.start_server(_handler(thost, tport), lhost, lport, reuse_address=True))
        print(f"forward {lhost}:{lport} -> {thost}:{tport}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
