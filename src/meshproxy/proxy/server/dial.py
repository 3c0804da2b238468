"""One connect command for every kind of egress: a socket connected to the target.

- a local address: bound to it (None: the host's default source);
- a prefix: bound to the chosen address of it with IP_FREEBIND (the operator routes
  the prefix to the host; docs/egress.md);
- an upstream proxy: connected to it from the host's default source, then an HTTP
  CONNECT (its Proxy-Authorization added), a SOCKS5 CONNECT (RFC 1929 credentials) or,
  for https://, TLS to the upstream and a CONNECT inside it. Plain HTTP requests go
  through the same tunnel (origin-form, as to an origin): the upstream sees no request
  of the client's and the client's Proxy-Authorization never reaches it.

What comes back is a plain connected socket (for https:// upstreams, one end of a
socket pair relayed to the TLS connection), so the HTTP exchange and splice work on it
unchanged. Upstream failures count against the upstream (core/health.py); one the
upstream is to blame for is retried once on another egress of the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
from pathlib import Path

from meshproxy.domain.addresses import host_port
from meshproxy.proxy.core import errors
from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool, Upstream
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.handshake import (
    MAX_CONNECT_HEAD,
    HandshakeError,
    Socks5Connect,
    http_connect_request,
    http_connect_status,
)
from meshproxy.proxy.core.options import RequestOptions
from meshproxy.proxy.server.upstream import UpstreamConnection

# Linux: let connect() pick the source port, so many connections can share one egress IP.
_BIND_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
# Linux: bind an address the host does not hold as its own (one of a routed prefix).
_FREEBIND = getattr(socket, "IP_FREEBIND", 15)
RELAY_READ = 64 * 1024
RELAY_LINGER = 30.0  # seconds an https upstream's answer may go on after our side ended


class UpstreamFailed(OSError):
    """A connection through an upstream egress failed; `blame`: the upstream's own
    failure (it counts against it and the request may go through another)."""

    def __init__(self, why: str, *, blame: bool = True) -> None:
        super().__init__(why)
        self.blame = blame


class BindFailed(OSError):
    """The local egress address could not be bound (gone from the host): nothing was sent,
    so the request may leave through another egress of the pool."""


async def connect_socket(
    loop: asyncio.AbstractEventLoop,
    ip: str,
    port: int,
    egress: str | None,
    within: float,
    *,
    freebind: bool = False,
) -> socket.socket:
    """A connected non-blocking socket to (ip, port) from `egress` (None: default source)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if egress is not None:
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _BIND_NO_PORT, 1)
            if freebind:
                sock.setsockopt(socket.IPPROTO_IP, _FREEBIND, 1)
            try:
                sock.bind((egress, 0))
            except OSError as error:
                raise BindFailed(error.errno, f"cannot bind {egress}: {error.strerror}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.wait_for(_connected(loop, sock, (ip, port)), within)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connected(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, address: tuple[str, int]
) -> None:
    """A non-blocking connect to an IP address. (uvloop's sock_connect would first send
    the literal through getaddrinfo on its thread pool: a thread hop per connection.)"""
    try:
        sock.connect(address)
        return
    except BlockingIOError:
        pass
    await _ready(loop, sock, write=True)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, os.strerror(error))


async def _ready(loop: asyncio.AbstractEventLoop, sock: socket.socket, *, write: bool) -> None:
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    fd = sock.fileno()
    if write:
        loop.add_writer(fd, ready)
    else:
        loop.add_reader(fd, ready)
    try:
        await done
    finally:
        if write:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class Dialer:
    """Opens connections through one proxy's egress pool and keeps its health."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, pool: EgressPool, ca_file: Path | None = None
    ) -> None:
        self.loop = loop
        self.pool = pool
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = None
        self._relays: set[asyncio.Task[None]] = set()

    async def open(
        self, choice: EgressChoice, ip: str, port: int, within: float, options: RequestOptions
    ) -> tuple[EgressChoice, socket.socket]:
        """A socket to (ip, port) through `choice`; when its upstream fails (its fault) or
        its local address cannot be bound, once more through another egress of the pool
        (a sticky session's next choice). Returns the choice that worked."""
        try:
            return choice, await self.attempt(choice, ip, port, within)
        except (UpstreamFailed, BindFailed) as failed:
            if isinstance(failed, UpstreamFailed) and not failed.blame:
                raise
            avoid = self.pool.member(choice)
            other = self.pool.choose(options, 6 if ":" in ip else 4, avoid=avoid)
            if not isinstance(other, EgressChoice) or other.key == choice.key:
                raise
            return other, await self.attempt(other, ip, port, within)

    async def attempt(
        self, choice: EgressChoice, ip: str, port: int, within: float, *, record: bool = True
    ) -> socket.socket:
        """One connection through `choice`; `record`: its outcome counts for the
        upstream's health (a probe records its own, after its check)."""
        upstream, egress = choice.upstream, choice.egress
        if upstream is None or egress is None:
            return await connect_socket(
                self.loop, ip, port, choice.address, within, freebind=choice.freebind
            )
        health = self.pool.health
        started = self.loop.time()
        try:
            async with asyncio.timeout(within):
                sock = await self._through(upstream, egress.label, ip, port, within)
        except TimeoutError:
            if record:
                health.failed(egress, "timed out", self.loop.time())
            raise UpstreamFailed(f"upstream {egress.label} timed out") from None
        except UpstreamFailed as failed:
            if failed.blame and record:
                health.failed(egress, str(failed), self.loop.time())
            raise
        now = self.loop.time()
        if record:
            health.succeeded(egress, now - started, now)
        return sock

    async def reach(self, egress: Egress) -> None:
        """Connect to an upstream proxy (and its TLS, for https://), then leave: the probe
        when there is no health_check_url."""
        upstream = egress.upstream
        assert upstream is not None
        address = await resolve_one(self.loop, upstream.host, upstream.port)
        sock = await connect_socket(self.loop, address, upstream.port, None, 3600.0)
        if upstream.scheme != "https":
            sock.close()
            return
        _, writer = await asyncio.open_connection(
            sock=sock, ssl=self._tls_context(), server_hostname=upstream.host
        )
        writer.close()

    async def _through(
        self, upstream: Upstream, label: str, ip: str, port: int, within: float
    ) -> socket.socket:
        try:
            address = await resolve_one(self.loop, upstream.host, upstream.port)
            sock = await connect_socket(self.loop, address, upstream.port, None, within)
        except OSError as error:
            raise UpstreamFailed(f"upstream {label}: {_reason(error)}") from None
        try:
            if upstream.scheme == "https":
                return await self._tls_tunnel(sock, upstream, label, ip, port)
            if upstream.scheme == "http":
                request = http_connect_request(ip, port, upstream.username, upstream.password)
                await self.loop.sock_sendall(sock, request)
                http_connect_status(await _connect_answer(self.loop, sock))
            else:
                await _socks5(self.loop, sock, ip, port, upstream)
        except HandshakeError as refused:
            sock.close()
            raise UpstreamFailed(f"upstream {label}: {refused}", blame=refused.blame) from None
        except OSError as error:
            sock.close()
            raise UpstreamFailed(f"upstream {label}: {_reason(error)}") from None
        except BaseException:
            sock.close()
            raise
        return sock

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context(
                cafile=str(self._ca_file) if self._ca_file else None
            )
        return self._tls

    async def _tls_tunnel(
        self, sock: socket.socket, upstream: Upstream, label: str, ip: str, port: int
    ) -> socket.socket:
        """TLS to the upstream, CONNECT inside it, and a socket pair relayed to it: the
        caller gets a plain socket like every other egress's."""
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=self._tls_context(), server_hostname=upstream.host,
            limit=MAX_CONNECT_HEAD,
        )
        try:
            writer.write(http_connect_request(ip, port, upstream.username, upstream.password))
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                raise HandshakeError("the upstream's answer to CONNECT is cut short") from None
            http_connect_status(head)
            ours, theirs = socket.socketpair()
            ours.setblocking(False)
            pair_reader, pair_writer = await asyncio.open_connection(sock=theirs)
        except BaseException:
            writer.close()
            raise
        task = self.loop.create_task(_relay(reader, writer, pair_reader, pair_writer))
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        return ours

    def close(self) -> None:
        for task in list(self._relays):
            task.cancel()


async def _connect_answer(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """The upstream's answer head to CONNECT, and not one byte more: what follows is the
    target's (peeked first, then only the head's bytes taken)."""
    head = b""
    while True:
        await _ready(loop, sock, write=False)
        try:
            data = sock.recv(MAX_CONNECT_HEAD, socket.MSG_PEEK)
        except BlockingIOError:
            continue
        if not data:
            raise HandshakeError("the upstream closed the connection before answering CONNECT")
        tail = head[-3:]
        end = (tail + data).find(b"\r\n\r\n")
        if end >= 0:
            return head + sock.recv(end + 4 - len(tail))
        head += sock.recv(len(data))
        if len(head) > MAX_CONNECT_HEAD:
            raise HandshakeError("the upstream's answer to CONNECT is too large")


async def _socks5(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, ip: str, port: int, upstream: Upstream
) -> None:
    handshake = Socks5Connect(ip, port, upstream.username, upstream.password)
    await loop.sock_sendall(sock, handshake.start())
    while not handshake.done:
        data = b""
        while len(data) < handshake.wanted:
            piece = await loop.sock_recv(sock, handshake.wanted - len(data))
            if not piece:
                break
            data += piece
        reply = handshake.received(data)
        if reply:
            await loop.sock_sendall(sock, reply)


async def _relay(
    tls_reader: asyncio.StreamReader,
    tls_writer: asyncio.StreamWriter,
    pair_reader: asyncio.StreamReader,
    pair_writer: asyncio.StreamWriter,
) -> None:
    """Both directions between the TLS connection and our end of the socket pair, until
    either side is done (TLS has no half-close of its own)."""

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
            while data := await reader.read(RELAY_READ):
                writer.write(data)
                await writer.drain()

    inward = asyncio.ensure_future(pump(tls_reader, pair_writer))
    outward = asyncio.ensure_future(pump(pair_reader, tls_writer))
    pumps = [inward, outward]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        if not inward.done():  # our side is done sending: its answer may still be coming
            await asyncio.wait([inward], timeout=RELAY_LINGER)
    finally:
        for task in pumps:
            task.cancel()
        for writer in (pair_writer, tls_writer):
            writer.close()


async def resolve_one(loop: asyncio.AbstractEventLoop, host: str, port: int) -> str:
    """An IP literal as it is, else the first address a name resolves to (an upstream's,
    or the health check URL's host: the operator's names, not a client's)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not found:
            raise OSError(f"cannot resolve {host}") from None
        return str(found[0][4][0])


def _reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error.strerror or error)


def failed(error: OSError, ip: str, port: int) -> ProxyError:
    """The answer to a connect to `ip`:`port` that failed: 504 when it timed out, else 502
    saying why."""
    if isinstance(error, TimeoutError):
        return errors.connect_timeout()
    target = host_port(ip, port)
    if isinstance(error, ConnectionRefusedError):
        return errors.connect_failed(f"connection to {target} refused")
    return errors.connect_failed(f"cannot connect to {target}: {error.strerror or error}")


def shown(choice: EgressChoice | None, sockname: object) -> str:
    """What X-ProxyMesh-IP says for a connection: an upstream's name, else the source
    address it left from (`sockname`, the socket's own)."""
    label = choice.shown if choice is not None else None
    if label is not None:
        return label
    return str(sockname[0]) if isinstance(sockname, tuple) and sockname else ""


def label(upstream: UpstreamConnection, choice: EgressChoice) -> None:
    """Name an upstream connection's X-ProxyMesh-IP for its egress, when that is not its
    source address (an upstream proxy's name)."""
    name = choice.shown
    if name is not None:
        upstream.local_ip = name
        upstream.ip_line = b"X-ProxyMesh-IP: " + name.encode() + b"\r\n"
