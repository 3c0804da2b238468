"""Fixtures for the data plane: real origins on loopback and a real ProxyNode (the
data-plane tests' conftest imports them, and so does any other folder's that needs them).

Origins (aiohttp, plain, TLS and IPv6, plus a raw asyncio server for misbehaviour) run
on one uvloop thread for the whole session; each test gets its own ProxyNode on another
uvloop thread, so blocking clients (curl, wget, requests, httpx) can be used directly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshproxy.config import Settings
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store

T = TypeVar("T")
CHUNK = b"x" * (1 << 20)
EGRESS = [f"127.0.0.{i}" for i in range(2, 41)]


def country_of(address: str) -> str:
    last = int(address.rsplit(".", 1)[1])
    return "US" if last < 15 else ("DE" if last < 28 else "FR")




class LoopThread:
    """A uvloop event loop in a daemon thread; `run` executes a coroutine there."""

    def __init__(self, name: str) -> None:
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


# ---- origins ----------------------------------------------------------------------------


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.json_response(
        {
            "peer": peer[0] if peer else None,
            "method": request.method,
            "path": request.path_qs,
            "version": f"{request.version.major}.{request.version.minor}",
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_length": len(body),
            "body": body[:200].decode("latin-1"),
        }
    )


async def _bytes(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    response = web.StreamResponse()
    response.content_length = n
    response.content_type = "application/octet-stream"
    await response.prepare(request)
    if request.method != "HEAD":
        while n > 0:
            piece = CHUNK if n >= len(CHUNK) else CHUNK[:n]
            await response.write(piece)
            n -= len(piece)
    return response


async def _chunked(request: web.Request) -> web.StreamResponse:
    n = int(request.match_info["n"])
    response = web.StreamResponse()
    if request.version >= (1, 1):  # an HTTP/1.0 request gets a close-delimited body
        response.enable_chunked_encoding()
    await response.prepare(request)
    piece = 7919  # odd sizes: chunk boundaries fall anywhere
    while n > 0:
        size = min(piece, n)
        await response.write(CHUNK[:size])
        n -= size
    await response.write_eof()
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.match_info["seconds"]))
    return web.Response(text="slow done")


async def _upload(request: web.Request) -> web.Response:
    total = 0
    async for piece in request.content.iter_any():
        total += len(piece)
    return web.json_response({"received": total, "chunked": "chunked" in request.headers.get(
        "Transfer-Encoding", "")})


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    if code in (204, 304):
        return web.Response(status=code)
    return web.Response(status=code, text=f"status {code}")


async def _spoof(request: web.Request) -> web.Response:
    """An origin that tries to set proxy headers on its response."""
    return web.Response(
        text="spoof", headers={"X-ProxyMesh-IP": "6.6.6.6", "Keep-Alive": "timeout=99"}
    )


def _app() -> web.Application:
    app = web.Application(client_max_size=1 << 40)
    app.router.add_route("*", "/echo", _echo)
    app.router.add_route("*", "/echo/{tail:.*}", _echo)
    app.router.add_get("/bytes/{n}", _bytes)
    app.router.add_get("/chunked/{n}", _chunked)
    app.router.add_route("GET", "/slow/{seconds}", _slow)
    app.router.add_route("*", "/upload", _upload)
    app.router.add_route("*", "/status/{code}", _status)
    app.router.add_route("GET", "/spoof", _spoof)
    return app


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "origin.pem", directory / "origin.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class RawOrigin:
    """A hand-written origin for behaviour aiohttp will not produce."""

    port: int = 0
    requests: list[bytes] = field(default_factory=list)
    # Handlers under way (/hang and /late-continue wait 30 s): cancelled at the end.
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        for task in list(self.handlers):
            task.cancel()
        await asyncio.gather(*self.handlers, return_exceptions=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served = 0
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                path = head.split(b" ", 2)[1]
                if path == b"/stale":
                    if served:  # the second request on a connection: drop it unanswered
                        break
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
                elif path == b"/until-close":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close")
                    await writer.drain()
                    break
                elif path == b"/continue":
                    length = int(
                        next(
                            line.split(b":")[1]
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length")
                        )
                    )
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                    body = await reader.readexactly(length)
                    reply = b"got %d" % len(body)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply),
                                                                                       reply))
                elif path == b"/late-continue":  # a 100 Continue after 0.4 s, then nothing
                    await asyncio.sleep(0.4)
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(30)
                    break
                elif path == b"/hang":
                    await asyncio.sleep(30)
                    break
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                served += 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.handlers.discard(task)
            writer.close()


@dataclass
class Origins:
    http: int
    https: int
    ipv6: int
    raw: RawOrigin
    ca_file: Path

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.http}{path}"

    def raw_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.raw.port}{path}"


@pytest.fixture(scope="session")
def origin_thread() -> Iterator[LoopThread]:
    thread = LoopThread("origins")
    yield thread
    thread.stop()


@pytest.fixture(scope="session")
def origins(
    origin_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Origins]:
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    raw = RawOrigin()

    async def start() -> Origins:
        runner = web.AppRunner(_app(), access_log=None)
        await runner.setup()
        # Port 0 everywhere: each site binds a free port itself (no race between picking a
        # port and binding it); runner.addresses lists them in the order started.
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
        await web.TCPSite(runner, "::1", 0).start()
        ports = [int(address[1]) for address in runner.addresses]
        server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
        raw.port = server.sockets[0].getsockname()[1]
        return Origins(ports[0], ports[1], ports[2], raw, cert)

    yield origin_thread.run(start())
    origin_thread.run(raw.close())


# ---- the node -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def proxy_thread() -> Iterator[LoopThread]:
    thread = LoopThread("proxy")
    yield thread
    thread.stop()


def proxy_settings(make_settings: Callable[..., Settings], **proxy: Any) -> Settings:
    """Three proxies: `open` (geo, egress 127.0.0.2-40), `world` (default source),
    `private` (nobody authorized); loopback destinations allowed."""
    behaviour = {"flush_interval": 0.25, "quota_check_interval": 0.25, **proxy}
    return make_settings(
        proxy=behaviour,
        ban={"max_failures": 4, "window_seconds": 600, "ban_seconds": 10_800},
        proxies=[
            {
                "name": "open",
                "geo": True,
                "port": 31280,
                "listen_port": 0,  # any free port: the node reports it (no race for it)
                "egress": [{"address": a, "country": country_of(a)} for a in EGRESS],
            },
            {"name": "world", "port": 31281, "listen_port": 0, "egress": [{}]},
            {"name": "private", "port": 31282, "listen_port": 0, "egress": [{}]},
        ],
    )


@dataclass
class Env:
    node: ProxyNode
    store: Store
    thread: LoopThread
    origins: Origins

    def proxy_url(
        self, name: str = "open", user: str | None = "alice", password: str = "pw"
    ) -> str:
        host, port = self.node.addresses[name]
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}{host}:{port}"

    def address(self, name: str = "open") -> tuple[str, int]:
        return self.node.addresses[name]

    def account(
        self, username: str, password: str | None = "pw", *, parent: AccountRecord | None = None,
        proxies: tuple[str, ...] = ("open", "world"), **fields: Any
    ) -> AccountRecord:
        return self.store.accounts.create(
            username,
            parent_id=parent.id if parent else None,
            password_hash=hash_password(password) if password else None,
            proxies=() if parent else proxies,
            **({"billing_day": 1} if parent is None else {}),  # type: ignore[arg-type]
            **fields,
        )

    def usage(self, username: str) -> tuple[int, int]:
        record = self.store.accounts.get(username)
        assert record is not None
        return self.store.usage.of(record, dt.datetime.now(dt.UTC))

    def flush(self) -> None:
        self.thread.run(self.node.meter.flush())

    def sync(self) -> None:
        self.thread.run(self.node._sync_once())


@pytest.fixture
def start_env(
    make_settings: Callable[..., Settings],
    store: Store,
    proxy_thread: LoopThread,
    origins: Origins,
) -> Iterator[Callable[..., Env]]:
    nodes: list[ProxyNode] = []

    def start(**proxy: Any) -> Env:
        node = ProxyNode(proxy_settings(make_settings, **proxy), store)
        proxy_thread.run(node.start())
        nodes.append(node)
        return Env(node, store, proxy_thread, origins)

    yield start
    for node in nodes:
        proxy_thread.run(node.stop(1.0))


@pytest.fixture
def env(start_env: Callable[..., Env]) -> Env:
    """A node with accounts `alice` (password pw, on open and world)."""
    environment = start_env()
    environment.account("alice")
    environment.sync()
    return environment


def echo_json(text: str | bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(text)
    return result
