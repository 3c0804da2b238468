"""Real upstream proxies for the egress tests: Debian's tinyproxy (HTTP CONNECT) and
microsocks (SOCKS5), each on its own loopback port and leaving from its own loopback
address (tinyproxy `Bind`, microsocks `-b`), so the origin's peer address says which
upstream carried a request. Installed by .ci/services; missing: `service_missing`."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from meshproxy.config import Settings
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store
from support.polling import eventually

from .conftest import Env, LoopThread, Origins, _self_signed

START_TIMEOUT = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class UpstreamProcess:
    """One upstream proxy process; `stop` and `start` again keep its port and address."""

    kind: str  # "http" or "socks5"
    exit_address: str  # where its connections to origins leave from
    directory: Path
    username: str | None = None
    password: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def url(self, scheme: str | None = None) -> str:
        auth = f"{self.username}:{self.password}@" if self.username else ""
        return f"{scheme or self.kind}://{auth}127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "socks5":
            command = ["microsocks", "-i", "127.0.0.1", "-p", str(self.port),
                       "-b", self.exit_address]
            if self.username:
                command += ["-u", self.username, "-P", self.password or ""]
            return command
        conf = self.directory / f"tinyproxy-{self.port}.conf"
        lines = [f"Port {self.port}", "Listen 127.0.0.1", f"Bind {self.exit_address}",
                 "Timeout 30", "MaxClients 200", "LogLevel Critical", "DisableViaHeader Yes"]
        if self.username:
            lines.append(f"BasicAuth {self.username} {self.password}")
        conf.write_text("\n".join(lines) + "\n")
        return ["tinyproxy", "-d", "-c", str(conf)]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        process = self.process

        def accepting() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{self._command()[0]} exited at start on {self.port}")
            return _accepting(self.port)

        if not eventually(accepting, START_TIMEOUT):
            raise RuntimeError(f"{self._command()[0]} did not start on {self.port}")
        time.sleep(0.05)
        if self.process.poll() is not None:  # the port was someone else's: it could not bind
            raise RuntimeError(f"{self._command()[0]} exited at start on {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@pytest.fixture
def upstream_proxies(
    tmp_path: Path, missing_service: Callable[[str, Exception], None]
) -> Iterator[Callable[..., UpstreamProcess]]:
    """start(kind, exit_address, username=None, password=None) -> a running upstream."""
    started: list[UpstreamProcess] = []

    def start(kind: str, exit_address: str, **credentials: Any) -> UpstreamProcess:
        program = "microsocks" if kind == "socks5" else "tinyproxy"
        if shutil.which(program) is None:
            missing_service(program, FileNotFoundError(f"apt-get install {program}"))
        upstream = UpstreamProcess(kind, exit_address, tmp_path, **credentials)
        started.append(upstream)
        for _ in range(3):  # a free port taken by someone else meanwhile: another one
            try:
                upstream.start()
                break
            except RuntimeError:
                upstream.stop()
                upstream.port = free_port()
        else:
            raise RuntimeError(f"{program} would not start")
        return upstream

    yield start
    for upstream in started:
        upstream.stop()


@pytest.fixture
def egress_env(
    make_settings: Callable[..., Settings], store: Store, proxy_thread: LoopThread,
    origins: Origins,
) -> Iterator[Callable[..., Env]]:
    """start(egress entries, proxy_fields={...}, **[proxy] settings) -> a node whose proxy
    `open` has that pool (and those [[proxies]] fields), with account alice/pw on it."""
    nodes: list[ProxyNode] = []

    def start(
        egress: list[dict[str, Any]], *, proxy_fields: dict[str, Any] | None = None,
        **behaviour: Any,
    ) -> Env:
        settings = make_settings(
            proxy={"flush_interval": 0.25, "quota_check_interval": 0.25, **behaviour},
            proxies=[{"name": "open", "geo": True, "port": 31280, "listen_port": 0,
                      "egress": egress, **(proxy_fields or {})}],
        )
        node = ProxyNode(settings, store)
        proxy_thread.run(node.start())
        nodes.append(node)
        env = Env(node, store, proxy_thread, origins)
        if store.accounts.get("alice") is None:  # a second node of the test: it has it
            env.account("alice", proxies=("open",))
        env.sync()
        return env

    yield start
    for node in nodes:
        proxy_thread.run(node.stop(1.0))


@pytest.fixture
def tls_upstream(
    upstream_proxies: Callable[..., UpstreamProcess], origin_thread: LoopThread, tmp_path: Path,
) -> Iterator[tuple[int, Path]]:
    """An https:// upstream: a TLS front on loopback (certificate for localhost) relaying
    to a tinyproxy that asks for u3/p3 and leaves from 127.0.0.52. (port, its CA file)."""
    inner = upstream_proxies("http", "127.0.0.52", username="u3", password="p3")
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", inner.port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(front, "127.0.0.1", 0, ssl=context)

    async def close(server: asyncio.Server) -> None:
        server.close()
        await server.wait_closed()

    server = origin_thread.run(serve())
    yield int(server.sockets[0].getsockname()[1]), cert
    origin_thread.run(close(server))
