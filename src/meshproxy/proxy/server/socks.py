"""One SOCKS5 client: an asyncio Protocol driving the handshake machine (core/socks5.py),
then a tunnel like an HTTP CONNECT's.

The decisions are the HTTP proxy's, made by the same machine from the same events: its
CONNECT request becomes a `SocksRequest`, an exchange of a `ConnectionMachine`
(core/connection.py) as an HTTP CONNECT is: the client IP's ban and the credentials (the
directory, username options included), the account's standing on this proxy (402/509),
the destination policy (403), the egress choice (sticky sessions included), the connect;
each refusal becomes a SOCKS reply code (docs/socks5.md). The
tunnel runs as an HTTP CONNECT's does (tunnelling.py: spliced or relayed over
transports, metered both ways to the account, cut at the limit); the node's sweep
(`check`) cuts it too, and closes handshakes slower than `header_timeout`.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import logging
import time
from functools import partial
from typing import Final, cast

from meshproxy.proxy.core import socks5
from meshproxy.proxy.core.connection import (
    ADMIT,
    OPEN_TUNNEL,
    Commands,
    ConnectionMachine,
    Reply,
    ResolveName,
    Verify,
)
from meshproxy.proxy.core.directory import AccountState, CredentialCheck
from meshproxy.proxy.core.egress import EgressChoice
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.machine import Clocks, Phase, Verdict, handshake_late, judge_tunnel
from meshproxy.proxy.core.options import NO_OPTIONS
from meshproxy.proxy.core.request import Body, PreparedRequest, RequestHead
from meshproxy.proxy.core.socks5 import Connect, Event, Login, Refused, Send, Socks5
from meshproxy.proxy.core.target import Target
from meshproxy.proxy.core.username import steer
from meshproxy.proxy.server import access, dial
from meshproxy.proxy.server.listener import Listener
from meshproxy.proxy.server.tasks import Tasks
from meshproxy.proxy.server.tunnelling import TunnelDriver

log = logging.getLogger("meshproxy.proxy.socks")


class SocksConnection(asyncio.Protocol):
    def __init__(self, listener: Listener) -> None:
        services = listener.services
        self.listener = listener
        self.loop = services.loop
        self.directory = services.directory
        self._meter_add = services.meter.add
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.machine = Socks5(no_auth=False)
        self.account: AccountState | None = None
        self._by_address: AccountState | None = None  # when the client's IP authenticates it
        self.authorization: bytes | None = None  # the login's, as a Basic header
        # Admission, as for an HTTP CONNECT (core/connection.py): `_admit` feeds it.
        self.clocks = Clocks(self.loop.time())  # (`last_active`: for the idle rules)
        self.admission: ConnectionMachine[SocksRequest] = ConnectionMachine(
            listener.rules, self.clocks
        )
        self.connect: Connect | None = None
        self.tunnel: TunnelDriver | None = None  # once its relay runs
        self.closed = False
        self.received = self.sent = 0
        self.uncharged = 0  # handshake bytes, both ways (charged once the tunnel opens)
        self.started = self.loop.time()
        self.access_log = services.access_log
        self.trail = access.SocksTrail()  # what its access-log line will say
        self.tasks = Tasks(self.loop)  # the connect, the relay's opening

    # ---- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=0)
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        self.client_ip = ip[7:] if ip.startswith("::ffff:") and "." in ip else ip
        self.admission.client_ip = self.client_ip
        known = self.directory.authenticate(self.client_ip, None, time.time())
        if isinstance(known, AccountState):
            self._by_address = known
            self.machine.no_auth = True
        self.listener.services.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.clocks.last_active = self.loop.time()
        self.received += len(data)
        self.uncharged += len(data)
        self._handle(self.machine.feed(data))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.listener.services.connections.discard(self)
        if self.tunnel is not None:
            self.tunnel.close()
        self.tasks.cancel()
        access.socks_ended(self)

    # ---- the handshake ----------------------------------------------------------------------

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if self.closed:
                return
            if isinstance(event, Send):
                self._write(event.data)
            elif isinstance(event, Refused):
                log.debug("SOCKS5 client %s refused: %s", self.client_ip, event.reason)
                self._write(event.data)
                self.close()
            elif isinstance(event, Login):
                self._login(event)
            elif isinstance(event, Connect):
                self._pause()
                self._admit(event)

    def _login(self, login: Login) -> None:
        credentials = f"{login.username}:{login.password}".encode()
        header = b"Basic " + base64.b64encode(credentials)
        result = self.directory.authenticate(self.client_ip, header, time.time())
        if isinstance(result, CredentialCheck):
            self._pause()
            try:
                future = self.loop.run_in_executor(
                    self.listener.services.verify_executor, self.directory.verify, result
                )
            except RuntimeError:  # the node is stopping
                self.abort()
                return

            def verified(done: asyncio.Future[bool]) -> None:
                ok = not done.cancelled() and done.exception() is None and done.result()
                self._logged_in(self.directory.verified(result, ok, time.time()), header)

            future.add_done_callback(verified)
            return
        self._logged_in(result, header)

    def _logged_in(self, result: AccountState | ProxyError, header: bytes) -> None:
        if self.closed:
            return
        if isinstance(result, AccountState):
            # Options the username names are refused at the login (the machine applies
            # them again, from the same header, when the request is admitted).
            steered = steer(NO_OPTIONS, self.directory.logins.found(header))
            if isinstance(steered, ProxyError):
                log.debug("SOCKS5 client %s: %s", self.client_ip, steered.reason)
                result = steered
            else:
                self.authorization = header
                self._adopt(result)
        if isinstance(result, ProxyError):
            self.trail.refused(result.status, result.reason)
        self._resume()
        self._handle(self.machine.logged_in(isinstance(result, AccountState)))

    def _adopt(self, account: AccountState) -> None:
        self.account = account

    # ---- admission (core/connection.py), then the connect ---------------------------------

    def _admit(self, request: Connect) -> None:
        self.trail.host, self.trail.port = request.host, request.port
        if self.account is None and self._by_address is not None:
            self._adopt(self._by_address)  # the no-auth method
        self.connect = request
        exchange = SocksRequest(request.host, request.port, self.authorization)
        self._run(exchange, self.admission.head_parsed(exchange))

    def _run(self, exchange: SocksRequest, commands: Commands) -> None:
        """Carry out the machine's commands for the CONNECT. Reading stays paused from the
        request to the reply, and the handshake's bytes are charged only when a tunnel
        opens (`_open_tunnel`), so its pause, resume and uncharge commands have nothing to do."""
        for command in commands:
            if self.closed:
                return
            if command is ADMIT:
                self.account = exchange.account
            elif command is OPEN_TUNNEL:
                self.tasks.spawn(self._open_tunnel(exchange))
            elif isinstance(command, ResolveName):
                self.tasks.spawn(self._resolve(exchange, command.host, command.port))
            elif isinstance(command, Reply):
                error = command.error
                self._refuse(error.status, error.proxy_status, error.reason)
            elif isinstance(command, Verify):
                self._verify(exchange, command.check)

    def _verify(self, exchange: SocksRequest, check: CredentialCheck) -> None:
        """The login's credential is no longer remembered (its password changed since):
        checked again, as for an HTTP request."""
        try:
            future = self.loop.run_in_executor(
                self.listener.services.verify_executor, self.directory.verify, check
            )
        except RuntimeError:  # the node is stopping
            self.abort()
            return
        future.add_done_callback(partial(self._verified, exchange, check))

    def _verified(
        self, exchange: SocksRequest, check: CredentialCheck, done: asyncio.Future[bool]
    ) -> None:
        ok = not done.cancelled() and done.exception() is None and done.result()
        self._run(exchange, self.admission.credential_verified(exchange, check, ok))

    async def _resolve(self, exchange: SocksRequest, host: str, port: int) -> None:
        addresses: tuple[str, ...] | None
        try:
            addresses = await self.listener.services.resolver.resolve(host, port)
        except OSError:
            addresses = None
        self._run(exchange, self.admission.name_resolved(exchange, addresses))

    async def _open_tunnel(self, exchange: SocksRequest) -> None:
        request, egress, addresses = self.connect, exchange.egress, exchange.addresses
        assert request is not None and egress is not None and addresses is not None
        assert exchange.request is not None
        address = addresses[0]
        self.trail.server = address
        behaviour = self.listener.services.behaviour
        try:
            egress, sock = await self.listener.dialer.open(
                egress, address, request.port, behaviour.connect_timeout,
                exchange.request.options,
            )
        except TimeoutError:
            self._reply(socks5.TTL_EXPIRED)
            return
        except OSError as error:
            self._reply(_connect_error(error))
            return
        if self.closed or not self.admission.upstream_ready(exchange):
            sock.close()
            return
        early = request.early + self.machine.leftover()
        try:
            if early:
                await self.loop.sock_sendall(sock, early)
        except OSError:
            sock.close()
            self._reply(socks5.GENERAL_FAILURE)
            return
        # BND.ADDR: the egress address the destination sees (through an upstream: unknown).
        bound = ("0.0.0.0", 0) if egress.upstream is not None else sock.getsockname()[:2]
        # The access log's egress: an upstream's name, else the source address (dial.py).
        self.trail.status, self.trail.egress = 200, dial.shown(egress, sock.getsockname())
        self._reply(socks5.SUCCEEDED, (str(bound[0]), int(bound[1])))
        tunnel = TunnelDriver(self, self._meter_add)
        # The handshake's bytes count once it opened a tunnel (a refusal's do not, as
        # for an HTTP request refused).
        tunnel.charge(self.uncharged)
        self.uncharged = 0
        self.admission.tunnel_started()
        client = self.transport
        assert client is not None
        await tunnel.carry(client, sock)

    def _refuse(self, status: int, proxy_status: str, reason: str) -> None:
        log.debug("SOCKS5 client %s refused (%d): %s", self.client_ip, status, reason)
        self.trail.refused(status, reason, proxy_status)
        self._reply(socks5.reply_code(status, proxy_status))

    def _reply(self, code: int, bound: tuple[str, int] | None = None) -> None:
        if self.closed:
            return
        self._write(self.machine.reply(code, bound))
        if code != socks5.SUCCEEDED:
            self.trail.refused(
                504 if code == socks5.TTL_EXPIRED else 502,
                f"SOCKS reply {code}",
                socks5.connect_error_type(code),
            )
            self.close()

    # ---- the tunnel (tunnelling.py) --------------------------------------------------------

    def tunnel_started(self, tunnel: TunnelDriver) -> None:
        self.tunnel = tunnel

    def tunnel_ended(self) -> None:
        self.closed = True
        access.socks_ended(self)
        self.listener.services.connections.discard(self)

    # ---- writing and closing ------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if data and transport is not None and not self.closed:
            transport.write(data)
            self.sent += len(data)
            self.uncharged += len(data)

    def _pause(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        access.socks_ended(self)
        self.listener.services.connections.discard(self)
        self.tasks.cancel()  # nothing they would do is wanted now
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.close()
        if self.transport is not None:
            self.transport.abort()
        if self.tunnel is not None:
            self.tunnel.abort()

    # ---- the node's sweep ---------------------------------------------------------------------

    def check(self, now: float) -> None:
        """The handshake's time limit (`header_timeout`: slow handshakes are closed), and
        while connecting or tunnelling quotas, account changes and the idle limit (a
        refused account's pending connect is cancelled with its connection)."""
        if self.closed:
            return
        limits = self.listener.services.limits
        account = self.account
        state = self.machine.state
        if self.tunnel is None and state is not socks5.State.CONNECTING:
            # A refusal before the request is the request's reply (`_connect`).
            if state in _HANDSHAKING and handshake_late(now, self.started, limits):
                self.abort()
            return
        refused = (
            account is not None
            and self.directory.refusal(account, self.listener.name) is not None
        )
        if judge_tunnel(now, self.clocks.last_active, limits, refused=refused) is Verdict.ABORT:
            self.abort()

    def drain(self) -> None:
        if self.tunnel is None:
            self.close()


_HANDSHAKING: Final = (socks5.State.GREETING, socks5.State.AUTH, socks5.State.REQUEST)


def _connect_error(error: OSError) -> int:
    if isinstance(error, ConnectionRefusedError):
        return socks5.CONNECTION_REFUSED
    if error.errno == errno.ENETUNREACH:
        return socks5.NETWORK_UNREACHABLE
    return socks5.HOST_UNREACHABLE


_SOCKS_HEAD: Final = RequestHead(b"CONNECT", b"", "1.1", [], False)  # the same for every request


class SocksRequest:
    """A SOCKS5 CONNECT as an exchange of the connection machine
    (core/connection.ExchangeState): a CONNECT to `host`:`port` with the login's
    credentials (None: the client's IP authenticates it), no body, no response."""

    __slots__ = (
        "account", "addresses", "body_received", "body_started", "client_keep",
        "continue_clock", "egress", "error", "head", "last_seen", "phase", "request",
        "request_complete", "response_started", "status", "timeout",
    )

    def __init__(self, host: str, port: int, authorization: bytes | None) -> None:
        self.head = _SOCKS_HEAD
        self.request: PreparedRequest | None = PreparedRequest(
            b"CONNECT", Target(host, port, b""), True, b"", authorization, NO_OPTIONS,
            Body.NONE, 0, False, False,
        )
        self.error: ProxyError | None = None
        self.account: AccountState | None = None
        self.egress: EgressChoice | None = None
        self.addresses: tuple[str, int] | None = None
        self.status = 0
        self.client_keep = False
        self.phase = Phase.ADMITTING
        self.request_complete = True
        self.response_started = False
        self.continue_clock = False
        self.body_started = 0.0
        self.body_received = 0
        self.timeout = 0.0
        self.last_seen = 0.0
