"""One client connection: an asyncio Protocol driving httptools, in the uvicorn style.

The request side is parsed with callbacks (heads are small; bodies are re-framed only
when chunked); each request becomes an `Exchange` (exchange.py), which sends it upstream
and forwards the response. The connection admits requests (credentials, quotas, routing,
the upstream connection), queues pipelined ones, hands each CONNECT to its tunnel
(tunnelling.py), and charges every byte on the client's connection, both directions, to
the account it belongs to.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any, Final, cast

import httptools

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.connection import (
    ABORT,
    ADMIT,
    CLOSE,
    OPEN_TUNNEL,
    TAKE_POOLED,
    UNCHARGE,
    Commands,
    ConnectionMachine,
    Dial,
    Pause,
    PauseReading,
    Reparse,
    Reply,
    ReplyAndClose,
    ResolveName,
    ResumeReading,
    Verify,
    pool_key,
)
from meshproxy.proxy.core.directory import AccountState, CredentialCheck
from meshproxy.proxy.core.errors import ProxyError, render
from meshproxy.proxy.core.headers import ip_not_found_line
from meshproxy.proxy.core.machine import Clocks, Phase
from meshproxy.proxy.core.request import Body, RequestHead
from meshproxy.proxy.server import access, dial
from meshproxy.proxy.server.acks import ack_now, socket_of
from meshproxy.proxy.server.allowance import cut_soon, within_allowance
from meshproxy.proxy.server.exchange import Exchange
from meshproxy.proxy.server.listener import Listener
from meshproxy.proxy.server.tasks import Tasks
from meshproxy.proxy.server.tunnel import no_backlog
from meshproxy.proxy.server.tunnelling import ConnectTunnel, TunnelDriver
from meshproxy.proxy.server.upstream import (
    PoolKey,
    UpstreamConnection,
    protocol_factory,
)

log = logging.getLogger("meshproxy.proxy")

MAX_REQUEST_HEAD: Final = 64 * 1024
# What a tunnel's connection holds instead of its own parser (about 900 bytes of each idle
# tunnel): nothing is parsed on it again.
_SPENT_PARSER: Final = httptools.HttpRequestParser(object())


# What an exchange's end lifts (one check on the request path, not two).
_RESPONSE_PAUSES: Final = Pause.UPSTREAM | Pause.BUFFER
# Enum members as module globals: on Python 3.11 `Phase.DONE` is a lookup through the enum's
# metaclass (about 85 ns), a global about 12; these are read several times a request.
_PHASE_DONE: Final = Phase.DONE
_PHASE_ADMITTING: Final = Phase.ADMITTING
_BODY_CHUNKED: Final = Body.CHUNKED


class ClientConnection(access.LineSource):
    def __init__(self, listener: Listener) -> None:
        services = listener.services
        self.listener = listener
        self.loop = services.loop
        self.directory = services.directory
        self._meter_add = services.meter.add
        self.access_log = services.access_log
        # Bytes read and written, and at this connection's last access-log line (access.py).
        self.received = self.sent = self.logged_received = self.logged_sent = 0
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.sock: Any = None  # to ACK on (acks.py); None without TCP_QUICKACK
        self.client_ip = ""
        self.account: AccountState | None = None
        self.parsing: Exchange | None = None
        self.tunnel: TunnelDriver | None = None  # a CONNECT's, once its relay runs
        self.connect_exchange: Exchange | None = None
        self.uncharged = 0
        self.paused = 0
        self.closed = False  # (the machine's CLOSING or CLOSED, read on the data path)
        self.clocks = Clocks(self.loop.time())  # what the timeout rules count from
        # The connection's states and decisions (core/connection.py): this class feeds it
        # events and carries out the commands it returns (`_run`).
        self.machine: ConnectionMachine[Exchange] = ConnectionMachine(listener.rules, self.clocks)
        self.tasks = Tasks(self.loop)  # resolving, connecting, opening a tunnel
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0

    # ---- asyncio callbacks ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        # Any backlog stops reading the upstream at once: a client that does not take its
        # response holds one upstream read of it here (upstream.READ_SIZE), no more.
        no_backlog(self.transport)
        self.sock = socket_of(transport)
        peer = transport.get_extra_info("peername")
        ip = str(peer[0]) if peer else ""
        self.client_ip = ip[7:] if ip.startswith("::ffff:") and "." in ip else ip
        self.machine.client_ip = self.client_ip
        self.listener.services.connections.add(self)

    def data_received(self, data: bytes) -> None:
        account = self.account
        if account is not None and account.limited:  # an upload stops at the limit too
            size = within_allowance(self, self.loop, account, len(data))
            if size is not None:
                data = data[:size]
        self.clocks.last_active = self.loop.time()
        self.uncharged += len(data)
        self.received += len(data)
        self._feed(data)
        if self.parsing is not None and self.sock is not None and not self.closed:
            ack_now(self.sock)  # more of the request is due: the client may wait for it

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data[upgrade.args[0] :])
        except httptools.HttpParserCallbackError:
            if not self.closed:
                log.exception("request handling failed")
                self.abort()
            return
        except httptools.HttpParserError as error:
            self._malformed(str(error))
            return
        if self.clocks.head_started is not None and _http09(self.parser, self._url, data):
            self._malformed("HTTP/0.9 request line")
            return
        self._charge_received()

    def eof_received(self) -> bool:
        # A half-closed client may still await its response; close once it is written.
        return self.machine.client_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        active, queued = self.machine.lost()
        if not self.closed and active is not None:
            access.exchange_ended(self, active, complete=False)
        self.closed = True
        self.listener.services.connections.discard(self)
        for exchange in (active, *queued):
            if exchange is not None:
                exchange.discard()
        if self.tunnel is not None:
            self.tunnel.close()
        self.tasks.cancel()

    def pause_writing(self) -> None:
        self.clocks.writing_paused = True
        exchange = self.machine.active
        if exchange is not None and exchange.upstream is not None:
            transport = exchange.upstream.transport
            if transport is not None:
                transport.pause_reading()

    def resume_writing(self) -> None:
        self.clocks.writing_paused = False
        exchange = self.machine.active
        if exchange is not None and exchange.upstream is not None:
            exchange.last_seen = self.loop.time()  # the origin's silence counts from here
            transport = exchange.upstream.transport
            if transport is not None:
                transport.resume_reading()

    # ---- httptools request callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.closed:
            # RFC 9112 §9.6: nothing pipelined behind a decided close is processed.
            raise ConnectionAbortedError("request after the connection closed")
        self._url = b""
        self._headers = []
        self._head_size = 0
        self.machine.head_begun(self.loop.time())

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_REQUEST_HEAD:  # `_grow`'s check, inline: once a header
            self._grow(0)

    def _grow(self, size: int) -> None:
        self._head_size += size
        if self._head_size > MAX_REQUEST_HEAD:
            self.reply_and_close(errors.head_too_large())
            raise ConnectionAbortedError("request head too large")

    def on_headers_complete(self) -> None:
        parser = self.parser
        head = RequestHead(
            parser.get_method(),
            self._url,
            parser.get_http_version(),
            self._headers,
            parser.should_keep_alive(),
        )
        exchange = Exchange(self, head)
        self.parsing = exchange
        if head.method == b"CONNECT":
            self.connect_exchange = exchange
        self._run(self.machine.head_parsed(exchange))

    def on_body(self, body: bytes) -> None:
        exchange = self.parsing
        if exchange is None or exchange.phase is _PHASE_DONE:
            return
        if exchange.continue_clock:
            exchange.stop_continue_clock()
        exchange.body_received += len(body)
        request = exchange.request
        if request is not None and request.body is _BODY_CHUNKED:
            exchange.send_body(b"".join((b"%x\r\n" % len(body), body, b"\r\n")))
        else:
            exchange.send_body(body)

    def on_message_complete(self) -> None:
        exchange = self.parsing
        self.parsing = None
        if exchange is None:
            return
        request = exchange.request
        chunked = request is not None and request.body is _BODY_CHUNKED
        if chunked and exchange.phase is not _PHASE_DONE:
            exchange.send_body(b"0\r\n\r\n")
        if not exchange.request_complete:
            exchange.body_complete()  # the response timeout counts from here
        if exchange.phase is _PHASE_DONE and exchange is self.machine.active:
            # Answered before the body was read (an error or an early response).
            self.finished(exchange, keep=exchange.client_keep)

    # ---- the machine's commands -------------------------------------------------------------

    def _run(self, commands: Commands) -> None:
        """Carry out the machine's `commands`, in order (the usual ones first). A command
        about an exchange is about the machine's active one."""
        for command in commands:
            if command is ADMIT:  # (the two of every request, inline: a call less each)
                # The active exchange's account is the connection's; what was read counts;
                # its response clock starts.
                exchange = self.machine.active
                assert exchange is not None and exchange.request is not None
                self.account = exchange.account
                self._charge_received()
                behaviour = self.listener.services.behaviour
                exchange.arm(
                    exchange.request.options.timeout or behaviour.upstream_timeout,
                    behaviour.quota_check_interval,
                )
            elif command is TAKE_POOLED:
                exchange = self.machine.active
                assert exchange is not None
                pooled = self.listener.services.upstreams.take(pool_key(exchange))
                if pooled is None:
                    self._run(self.machine.pool_empty(exchange))
                elif self.machine.upstream_ready(exchange):
                    exchange.attach(pooled, reused=True)
                else:  # pragma: no cover - the machine gave the command for this exchange
                    self.listener.services.upstreams.put(pooled)
            elif type(command) is ResumeReading:
                self.resume(command.reason)
            elif type(command) is PauseReading:
                self.pause(command.reason)
            elif type(command) is Reply:
                self._reply(command)
            elif command is UNCHARGE:
                self.uncharged = 0
            elif type(command) is Verify:
                self._verify(command.check)
            elif type(command) is ResolveName:
                self.tasks.spawn(self._resolve(self._active(), command.host, command.port))
            elif type(command) is Dial:
                self.tasks.spawn(self._connect(self._active(), command.key))
            elif command is OPEN_TUNNEL:
                self.tasks.spawn(ConnectTunnel(self, self._meter_add, self._active()).open())
            elif command is CLOSE:
                self.close()
            elif command is ABORT:
                self.abort()
            elif type(command) is ReplyAndClose:
                self.reply_and_close(command.error)
            elif type(command) is Reparse:
                self._reparse(cast(Exchange, command.exchange))
            else:  # pragma: no cover - every command of core/connection.py is above
                raise AssertionError(f"unknown command {command!r}")

    def _active(self) -> Exchange:
        exchange = self.machine.active
        assert exchange is not None
        return exchange

    # ---- admission --------------------------------------------------------------------------

    def _verify(self, check: CredentialCheck) -> None:
        exchange = self._active()
        try:
            future = self.loop.run_in_executor(
                self.listener.services.verify_executor, self.directory.verify, check
            )
        except RuntimeError:  # the executor is shut down: the node is stopping
            self.abort()
            return
        future.add_done_callback(partial(self._verified, exchange, check))

    def _verified(
        self, exchange: Exchange, check: CredentialCheck, future: asyncio.Future[bool]
    ) -> None:
        if future.cancelled():  # dropped from the queue by the node's stop
            self.resume(Pause.VERIFY)
            if not self.closed and exchange is self.machine.active:
                self.abort()
            return
        try:
            ok = future.result()
        except Exception:
            log.exception("credential verification failed")
            ok = False
        self._run(self.machine.credential_verified(exchange, check, ok))

    async def _resolve(self, exchange: Exchange, host: str, port: int) -> None:
        addresses: tuple[str, ...] | None
        try:
            addresses = await self.listener.services.resolver.resolve(host, port)
        except OSError:
            addresses = None
        self._run(self.machine.name_resolved(exchange, addresses))

    def connect_timeout(self, exchange: Exchange) -> float:
        assert exchange.request is not None
        behaviour = self.listener.services.behaviour
        option = exchange.request.options.timeout
        return min(behaviour.connect_timeout, option) if option else behaviour.connect_timeout

    async def _connect(self, exchange: Exchange, key: PoolKey) -> None:
        _, ip, port = key
        services = self.listener.services
        try:
            within = self.connect_timeout(exchange)
            assert exchange.egress is not None and exchange.request is not None
            exchange.egress, sock = await self.listener.dialer.open(
                exchange.egress, ip, port, within, exchange.request.options
            )
            key = (exchange.egress.key, ip, port)  # another egress when the first failed
            _, upstream = await self.loop.create_connection(
                protocol_factory(services.upstreams, key, exchange.egress.poolable), sock=sock
            )
            dial.label(upstream, exchange.egress)
        except OSError as error:
            self.connect_failed(exchange, dial.failed(error, ip, port))
            return
        assert isinstance(upstream, UpstreamConnection)
        if not self.machine.upstream_ready(exchange):
            upstream.close()
            return
        exchange.attach(upstream, reused=False)

    def connect_failed(self, exchange: Exchange, error: ProxyError) -> None:
        self._run(self.machine.upstream_failed(exchange, error))

    def retry(self, exchange: Exchange, data: bytes) -> None:
        """A connection died before answering: send the same request on a new one (the
        machine picks the egress: `ConnectionMachine.retry`)."""
        exchange.phase = _PHASE_ADMITTING
        exchange.body = [data[len(exchange.request.upstream_head) :]] if exchange.request else []
        exchange.body_size = 0
        self._run(self.machine.retry(exchange))

    # ---- CONNECT ----------------------------------------------------------------------------

    def _upgraded(self, leftover: bytes) -> None:
        """The parser stopped after a CONNECT head; what follows belongs to the tunnel."""
        exchange, self.connect_exchange = self.connect_exchange, None
        if exchange is None or exchange.phase is _PHASE_DONE:
            # Refused at once (`finished` gave us a fresh parser): go on parsing.
            if leftover and not self.closed:
                self._feed(leftover)
            return
        self.pause(Pause.TUNNEL)
        if leftover:
            exchange.body.append(leftover)
        self._charge_received()

    def tunnel_started(self, tunnel: TunnelDriver) -> None:
        """The CONNECT's relay owns both sockets (tunnelling.py): nothing is parsed here
        again, and the tunnel's bytes no longer pass through this protocol."""
        self.tunnel = tunnel
        self.machine.tunnel_started()
        self.parser = _SPENT_PARSER
        self.paused = 0

    def tunnel_ended(self) -> None:
        self.closed = True
        self.machine.tunnel_closed()
        self.listener.services.connections.discard(self)

    # ---- writing, charging, flow control ----------------------------------------------------

    def send(self, data: bytes | memoryview) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        account = self.account
        if account is not None and account.limited:
            size = within_allowance(self, self.loop, account, len(data))
            if size is not None:
                data = data[:size]
        transport.write(data)
        self.sent += len(data)
        if account is not None:
            nbytes = len(data)
            if account.charge(nbytes):  # a limit reached: cut now, not at the sweep
                cut_soon(self, self.loop)
            self._meter_add(account.id, account.parent_id, nbytes)

    def _charge_received(self) -> None:
        account = self.account
        nbytes = self.uncharged
        if account is not None and nbytes:
            self.uncharged = 0
            if account.charge(nbytes):  # a limit reached: cut now, not at the sweep
                cut_soon(self, self.loop)
            self._meter_add(account.id, account.parent_id, nbytes)

    def pause(self, reason: Pause) -> None:
        if not self.paused:
            self.clocks.reading_paused(self.loop.time())
            if self.transport is not None:
                self.transport.pause_reading()
        self.paused |= reason

    def resume(self, reason: int) -> None:
        if not self.paused & reason:
            return
        self.paused &= ~reason
        if not self.paused:
            self.clocks.reading_resumed(self.loop.time())
            if self.transport is not None and not self.closed:
                self.transport.resume_reading()

    def reading_clock(self, now: float) -> float:
        return self.clocks.reading_clock(now)

    @property
    def writing_paused(self) -> bool:
        return self.clocks.writing_paused

    def pause_for_upstream(self) -> None:
        self.pause(Pause.UPSTREAM)

    def resume_for_upstream(self) -> None:
        self.resume(Pause.UPSTREAM)

    def pause_for_body(self) -> None:
        self.pause(Pause.BUFFER)

    def resume_for_body(self) -> None:
        self.resume(Pause.BUFFER)

    # ---- ending exchanges -------------------------------------------------------------------

    def answer(self, exchange: Exchange, error: ProxyError) -> None:
        """Reply with a refusal of the proxy's own; the machine keeps the connection when
        that is safe (`ConnectionMachine.refused`)."""
        self._run(self.machine.refused(exchange, error))

    def _reply(self, reply: Reply) -> None:
        exchange = self._active()
        exchange.discard()
        extra = b""
        if exchange.egress is not None and exchange.egress.not_found:
            extra = ip_not_found_line(exchange.egress.not_found)
        self.send(
            render(reply.error, realm=self.listener.services.behaviour.realm,
                   close=not reply.keep, extra_headers=extra)
        )
        if reply.ends:
            self.finished(exchange, keep=reply.keep)

    def finished(self, exchange: Exchange, *, keep: bool) -> None:
        if exchange is not self.machine.active:
            return
        access.exchange_ended(self, exchange, complete=True)
        self.resume(_RESPONSE_PAUSES)
        commands = self.machine.exchange_ended(exchange, keep)
        if commands:  # (none, for a keep-alive connection that idles)
            self._run(commands)

    def _reparse(self, exchange: Exchange) -> None:
        # A refused CONNECT leaves the parser in tunnel mode: start a fresh one.
        self.parser = httptools.HttpRequestParser(self)
        leftover = b"".join(exchange.body)
        exchange.body = []
        self.resume(Pause.TUNNEL)
        if leftover:
            self.loop.call_soon(self._feed, leftover)

    def reply_and_close(self, error: ProxyError) -> None:
        if self.closed:
            return
        active = self.machine.active
        if active is not None and active.upstream is not None:
            self._charge_received()  # what it read went (in part) to an origin: it counts
        self.uncharged = 0
        self.account = None
        if active is None or not active.response_started:
            if active is not None:
                active.error, active.status = error, error.status
            self.send(render(error, realm=self.listener.services.behaviour.realm, close=True))
        self.close()

    def _malformed(self, why: str) -> None:
        if not self.closed:
            self.reply_and_close(errors.bad_request(f"malformed request: {why}"))

    def close(self) -> None:
        """Close after what is written has been sent."""
        if self.closed:
            return
        self.closed = True
        active, queued = self.machine.close()
        transport = self.transport
        if transport is None or not transport.get_write_buffer_size():
            # Otherwise the sweep still watches the flush (`send_timeout`) until it is lost.
            self.listener.services.connections.discard(self)
        if active is not None:
            access.exchange_ended(self, active, complete=False)
        for exchange in (active, *queued):
            if exchange is not None:
                exchange.discard()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (a truncated response, a quota crossed mid-transfer)."""
        self.close()
        self.tasks.cancel()
        if self.transport is not None:
            self.transport.abort()
        if self.tunnel is not None:
            self.tunnel.abort()

    @property
    def draining(self) -> bool:
        return self.machine.draining

    @property
    def active(self) -> Exchange | None:
        """The exchange being served (the machine's; the rest are queued behind it)."""
        return self.machine.active

    # ---- periodic checks (the node's sweep) --------------------------------------------------

    def check(self, now: float) -> None:
        """Enforce quotas and account changes on open connections, and the idle, header
        and body timeouts (within one `quota_check_interval`); arm the timers of response
        deadlines near enough (`Exchange.watch`)."""
        services = self.listener.services
        account = self.account
        refused = (
            not self.closed
            and account is not None
            and self.directory.refusal(account, self.listener.name) is not None
        )
        exchange = self.machine.active
        if exchange is not None and self.tunnel is None:
            exchange.watch(now, services.behaviour.quota_check_interval)  # the 504's timer
        transport = self.transport
        self._run(self.machine.tick(
            now,
            unsent=transport.get_write_buffer_size() if transport is not None else 0,
            reading_paused=bool(self.paused),
            refused=refused,
        ))

    def drain(self) -> None:
        """Stop after the current exchange (graceful shutdown)."""
        self._run(self.machine.drain())


def _http09(parser: httptools.HttpRequestParser, url: bytes, data: bytes) -> bool:
    """A head left incomplete by a read is an HTTP/0.9 request line (no version, no head
    to follow: its client waits for a bare body) when llhttp took it for one (0.9 once
    a header line starts), or when the line ended with no version after a URL."""
    version = parser.get_http_version()
    return version == "0.9" or (version == "0.0" and bool(url) and data.endswith(b"\n"))

