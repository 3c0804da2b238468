"""A client's tunnel once the machine opened it: an HTTP CONNECT's (`ConnectTunnel`: it
dials the destination and answers 200 itself) or a SOCKS5 CONNECT's (`TunnelDriver`,
after socks.py's reply).

Its own module, between the two listeners' connections (connection.py, socks.py) and the
two relays (splice.py moves the bytes in the kernel; tunnel.py over transports where
splice cannot): both connections run a tunnel the same way, and neither relay knows of
accounts or connections. The driver picks the relay, charges every byte either way to
the connection's account as it moves (and to the meter; the charge that reaches a limit
cuts the connection at once, allowance.py), and tells its connection only that the relay
started and that it ended (`TunnelOwner`). One per tunnel, held by its connection while
the tunnel lasts: slots only, for an idle tunnel's memory is a budget (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from meshproxy.proxy.core.egress import not_honoured
from meshproxy.proxy.core.headers import ip_not_found_line
from meshproxy.proxy.server import access, dial, splice
from meshproxy.proxy.server.allowance import cut_soon
from meshproxy.proxy.server.splice import SpliceTunnel
from meshproxy.proxy.server.tunnel import TransportTunnel, TunnelEnd

if TYPE_CHECKING:
    from meshproxy.proxy.core.connection import ConnectionMachine
    from meshproxy.proxy.core.directory import AccountState
    from meshproxy.proxy.core.errors import ProxyError
    from meshproxy.proxy.core.machine import Clocks
    from meshproxy.proxy.server.exchange import Exchange
    from meshproxy.proxy.server.listener import Listener

MeterAdd = Callable[[int, int | None, int], None]  # Meter.add(account, parent, nbytes)


class TunnelOwner(Protocol):
    """A client connection as its tunnel sees it (connection.ClientConnection,
    socks.SocksConnection)."""

    loop: asyncio.AbstractEventLoop
    closed: bool
    account: AccountState | None  # what the tunnel's bytes are charged to
    received: int  # bytes read from the client and written to it (the access log's)
    sent: int
    clocks: Clocks  # `last_active`: the tunnel's idle rule counts from its last bytes

    def abort(self) -> None: ...
    def tunnel_started(self, tunnel: TunnelDriver) -> None: ...  # the relay owns both sockets
    def tunnel_ended(self) -> None: ...  # (a relay over transports tells it once per end)


class TunnelDriver:
    """One client's tunnel: its relay (`relay`, set once it runs) and its charging."""

    __slots__ = ("_meter_add", "_owner", "relay")

    def __init__(self, owner: TunnelOwner, meter_add: MeterAdd) -> None:
        self._owner = owner
        self._meter_add = meter_add  # (the connection's own: none made per tunnel)
        self.relay: SpliceTunnel | TransportTunnel | None = None

    async def carry(self, client: asyncio.Transport, upstream: socket.socket) -> None:
        """Relay between `client` and `upstream` (connected, the client told): with
        splice(2) when nothing waits to be written to the client, else over transports."""
        if splice.AVAILABLE and not client.get_write_buffer_size():
            self._splice(client, upstream)
            return
        try:
            ends = await self._relay_ends(upstream)
        except OSError:
            self._owner.abort()
            return
        if ends is not None:
            self._join(client, *ends)

    def _splice(self, client: asyncio.Transport, upstream: socket.socket) -> None:
        """Take the client socket out of its transport and relay with splice(2)."""
        owner = self._owner
        client_socket = splice.detach(client)
        if client_socket is None:  # EMFILE: end the tunnel, never leave it hung
            upstream.close()
            owner.abort()
            return
        account = owner.account
        relay = SpliceTunnel(
            owner.loop, client_socket, upstream, self._in, self._ended, self._out,
            allowance=None if account is None else account.allowance,
        )
        self.relay = relay
        owner.tunnel_started(self)
        relay.start()

    async def _relay_ends(
        self, upstream: socket.socket
    ) -> tuple[asyncio.Transport, TunnelEnd, TunnelEnd] | None:
        """The transport relay (tunnel.py): `upstream` in a transport of its own, and the
        relay's two ends; None when the connection closed meanwhile. OSError: no transport."""
        owner = self._owner
        client_end = TunnelEnd(self._in, self._ended)
        transport, upstream_end = await owner.loop.create_connection(
            lambda: TunnelEnd(self._out, self._ended), sock=upstream
        )
        assert isinstance(upstream_end, TunnelEnd)
        if owner.closed:
            transport.close()
            return None
        return transport, client_end, upstream_end

    def _join(
        self,
        client: asyncio.Transport,
        transport: asyncio.Transport,
        client_end: TunnelEnd,
        upstream_end: TunnelEnd,
        first: bytes = b"",
    ) -> None:
        """Start the transport relay; `first`: what the client sent ahead, to the upstream."""
        client_end.attach(client, upstream_end)
        upstream_end.attach(transport, client_end)
        self.relay = TransportTunnel(client_end, upstream_end)
        self._owner.tunnel_started(self)
        if first:
            transport.write(first)
        client.set_protocol(client_end)
        client.resume_reading()

    # ---- charging, and the end -------------------------------------------------------------

    def charge(self, nbytes: int) -> None:
        """Count `nbytes` against the connection's account and in the meter."""
        owner = self._owner
        account = owner.account
        if account is not None:
            if account.charge(nbytes):  # a limit reached: cut now, not at the sweep
                cut_soon(owner, owner.loop)
            self._meter_add(account.id, account.parent_id, nbytes)

    def _in(self, nbytes: int) -> None:
        owner = self._owner
        owner.received += nbytes
        owner.clocks.last_active = owner.loop.time()
        self.charge(nbytes)

    def _out(self, nbytes: int) -> None:
        owner = self._owner
        owner.sent += nbytes
        owner.clocks.last_active = owner.loop.time()
        self.charge(nbytes)

    def _ended(self) -> None:
        """Either side ended or failed, or the relay was closed."""
        self.close()
        self._owner.tunnel_ended()

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()

    def abort(self) -> None:
        if self.relay is not None:
            self.relay.abort()


class ConnectOwner(TunnelOwner, Protocol):
    """An HTTP client connection (connection.ClientConnection) as its CONNECT's tunnel sees
    it: the machine's answer to the dial, and the 200 written as any response is."""

    listener: Listener
    machine: ConnectionMachine[Exchange]
    transport: asyncio.Transport | None

    def send(self, data: bytes | memoryview) -> None: ...
    def connect_timeout(self, exchange: Exchange) -> float: ...
    def connect_failed(self, exchange: Exchange, error: ProxyError) -> None: ...


class ConnectTunnel(TunnelDriver):
    """An HTTP CONNECT's tunnel: dials the destination, answers "200 Connection
    established", sends on what the client wrote after its head, and writes the tunnel's
    access-log line when it ends."""

    __slots__ = ("exchange",)

    def __init__(self, owner: ConnectOwner, meter_add: MeterAdd, exchange: Exchange) -> None:
        super().__init__(owner, meter_add)
        self.exchange: Exchange | None = exchange  # (None once its line is written)

    @property
    def _conn(self) -> ConnectOwner:
        # The owner it was made with (compiled, a subclass cannot narrow `_owner`'s type).
        return cast("ConnectOwner", self._owner)

    async def open(self) -> None:
        """Dial (the machine's `upstream_ready`, else `upstream_failed`), then splice when
        nothing else has to go either way first, else relay over transports."""
        conn, exchange = self._conn, self.exchange
        assert exchange is not None
        assert exchange.egress is not None and exchange.addresses is not None
        ip, port = exchange.addresses
        try:
            assert exchange.request is not None
            exchange.egress, sock = await conn.listener.dialer.open(
                exchange.egress, ip, port, conn.connect_timeout(exchange),
                exchange.request.options,
            )
        except OSError as error:
            conn.connect_failed(exchange, dial.failed(error, ip, port))
            return
        if not conn.machine.upstream_ready(exchange):
            sock.close()
            return
        client = conn.transport
        assert client is not None
        head_sent = False
        if (
            splice.AVAILABLE
            and not exchange.body
            and not client.get_write_buffer_size()
            and client.get_extra_info("ssl_object") is None  # TLS bytes are not the tunnel's
        ):
            exchange.discard()
            shown = dial.shown(exchange.egress, sock.getsockname())
            conn.send(self._established(exchange, shown))
            head_sent = True
            if not client.get_write_buffer_size():
                self._splice(client, sock)
                return
            # The head did not go out at once (a client not reading): relay over transports.
        try:
            ends = await self._relay_ends(sock)
        except OSError as error:
            if head_sent:
                conn.abort()
            else:
                conn.connect_failed(exchange, dial.failed(error, ip, port))
            return
        if ends is None:
            return
        transport = ends[0]
        if not head_sent:
            exchange.discard()
            sockname = transport.get_extra_info("sockname")
            conn.send(self._established(exchange, dial.shown(exchange.egress, sockname)))
        first = b""
        if exchange.body:  # read after the CONNECT head, before the tunnel
            first = b"".join(exchange.body)
            exchange.body = []
        self._join(client, *ends, first)

    @staticmethod
    def _established(exchange: Exchange, local: str) -> bytes:
        assert exchange.egress is not None
        exchange.local_ip, exchange.status = local, 200
        # The tunnel keeps its exchange for the access log, which needs none of the head's
        # raw headers: an idle tunnel holds a few hundred bytes less. (Emptied, not
        # replaced: the connection's parser state holds the same list.)
        exchange.head.headers.clear()
        head = [b"HTTP/1.1 200 Connection established\r\n"]
        head += (b"X-ProxyMesh-IP: ", local.encode(), b"\r\n")
        if exchange.egress.not_found:
            head.append(ip_not_found_line(exchange.egress.not_found))
        ignored = exchange.request and not_honoured(exchange.request.options.not_ips, local)
        if ignored:
            head += (b"X-ProxyMesh-Not-IP-Ignored: ", ignored.encode(), b"\r\n")
        head.append(b"\r\n")
        return b"".join(head)

    def _ended(self) -> None:
        exchange, self.exchange = self.exchange, None
        # Once, though both ends of a relay report their close. (The owner is a
        # ClientConnection, so a LineSource.)
        if exchange is not None and self.relay is not None:
            access.tunnel_ended(cast("access.LineSource", self._conn), exchange)
        super()._ended()
