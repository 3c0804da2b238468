"""One request and its response, through one upstream connection at a time.

The client's connection (`connection.ClientConnection`) parses the request and admits
it; the `Exchange` then sends it upstream (`attach`), follows the response's framing as
it arrives (`upstream_data`) and forwards it unchanged, one client write per upstream
chunk, and hands the upstream back to the pool when the response is complete. What it
cannot decide alone (a refusal to send, a retry, the end of the exchange) it asks of its
connection.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Final, Protocol

import httptools

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.egress import not_honoured
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.headers import ip_not_found_line
from meshproxy.proxy.core.machine import (
    Lost,
    Phase,
    continue_clock_starts,
    timer_at_start,
    timer_due,
    upstream_lost,
)
from meshproxy.proxy.core.request import Body, PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.core.response import MAX_HEAD, Framing, interim, parse_response_head

if TYPE_CHECKING:
    from meshproxy.proxy.core.directory import AccountState
    from meshproxy.proxy.core.egress import EgressChoice
    from meshproxy.proxy.server.listener import Listener
    from meshproxy.proxy.server.upstream import UpstreamConnection

MAX_BUFFERED_BODY: Final = 256 * 1024
# A request this small can be sent again when a pooled connection was stale.
REPLAY_LIMIT: Final = 64 * 1024
# Enum members as module globals: on Python 3.11 `Phase.BODY` is a lookup through the enum's
# metaclass (about 85 ns), a global about 12; these are read several times a request.
_PHASE_ADMITTING: Final = Phase.ADMITTING
_PHASE_WAITING: Final = Phase.WAITING
_PHASE_BODY: Final = Phase.BODY
_PHASE_DONE: Final = Phase.DONE
_FRAMING_NONE: Final = Framing.NONE
_FRAMING_LENGTH: Final = Framing.LENGTH
_FRAMING_CHUNKED: Final = Framing.CHUNKED
_FRAMING_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE
_BODY_CHUNKED: Final = Body.CHUNKED


class Owner(Protocol):
    """The client connection (connection.ClientConnection) as its exchanges see it."""

    @property
    def client_ip(self) -> str: ...
    @property
    def listener(self) -> Listener: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def transport(self) -> asyncio.Transport | None: ...
    @property
    def draining(self) -> bool: ...
    @property
    def writing_paused(self) -> bool: ...  # its client has a backlog: read no upstream

    def reading_clock(self, now: float) -> float: ...
    def send(self, data: bytes | memoryview) -> None: ...
    def pause_for_body(self) -> None: ...
    def resume_for_body(self) -> None: ...
    def pause_for_upstream(self) -> None: ...
    def resume_for_upstream(self) -> None: ...
    def answer(self, exchange: Exchange, error: ProxyError) -> None: ...
    def retry(self, exchange: Exchange, data: bytes) -> None: ...
    def finished(self, exchange: Exchange, *, keep: bool) -> None: ...
    def abort(self) -> None: ...


class Exchange:
    """One request and its response."""

    __slots__ = (
        "account",
        "addresses",
        "body",
        "body_received",
        "body_size",
        "body_started",
        "chunk_done",
        "chunk_parser",
        "client_keep",
        "conn",
        "continue_clock",
        "deadline",
        "egress",
        "error",
        "first_byte",
        "head",
        "head_buffer",
        "interim_sent",
        "last_seen",
        "local_ip",
        "phase",
        "remaining",
        "replay",
        "request",
        "request_complete",
        "response_framing",
        "response_started",
        "retried",
        "reusable",
        "started",
        "status",
        "timeout",
        "timer",
        "upstream",
    )

    def __init__(self, conn: Owner, head: RequestHead) -> None:
        self.conn = conn
        self.head = head
        prepared = prepare_request(
            head, forwarded_for=conn.client_ip if conn.listener.forwarded else None
        )
        self.request: PreparedRequest | None = None
        self.error: ProxyError | None = None
        if isinstance(prepared, ProxyError):
            self.error = prepared
        else:
            self.request = prepared
        self.body: list[bytes] = []
        self.body_size = 0
        # The minimum-rate rule for the request body runs on the client's clock only.
        self.started = now = conn.loop.time()
        self.body_started = conn.reading_clock(now)
        # For the access log (access.py): who, from which source IP, with what status.
        self.account: AccountState | None = None
        self.local_ip = ""
        self.status = 0
        self.body_received = 0
        self.upstream: UpstreamConnection | None = None
        self.egress: EgressChoice | None = None
        self.addresses: tuple[str, int] | None = None
        self.phase = _PHASE_ADMITTING
        self.head_buffer = b""
        self.response_framing = _FRAMING_NONE
        self.remaining = 0
        self.chunk_parser: httptools.HttpResponseParser | None = None
        self.chunk_done = False
        self.reusable = False
        self.client_keep = False
        self.response_started = False  # bytes of the final response went to the client
        self.first_byte = 0.0  # loop time the final response head went out (0: none yet)
        self.interim_sent = False  # a 1xx head went to the client (a final one may follow)
        self.replay: bytes | None = None
        self.retried = False
        # Loop time by which the response must have started, and the timer that answers
        # 504 then: armed only near the deadline (`arm`, `watch`), not for every request.
        # The clock starts when the request is complete (and again after an interim head).
        self.deadline = math.inf
        self.timeout = 0.0  # its seconds, from admission on
        self.timer: asyncio.TimerHandle | None = None
        # The clock runs before the request is complete: it expects 100 Continue and the
        # client waits for it (no body yet), so the origin's silence is the origin's.
        self.continue_clock = False
        self.last_seen = 0.0  # loop time of the last upstream bytes
        # Without a body the message is complete with its head.
        request = self.request
        self.request_complete = request is None or (
            request.body is not _BODY_CHUNKED and not request.content_length
        )

    # ---- request body ---------------------------------------------------------------------

    def send_body(self, piece: bytes) -> None:
        upstream = self.upstream
        if upstream is not None and self.phase is not _PHASE_ADMITTING:
            upstream.write(piece)
            return
        self.body.append(piece)
        self.body_size += len(piece)
        if self.body_size > MAX_BUFFERED_BODY:
            self.conn.pause_for_body()

    def attach(self, upstream: UpstreamConnection, *, reused: bool) -> None:
        """Send the request over `upstream` (fresh or from the pool)."""
        assert self.request is not None
        self.upstream = upstream
        self.local_ip = upstream.local_ip
        upstream.exchange = self
        if self.conn.writing_paused and upstream.transport is not None:
            upstream.transport.pause_reading()  # until the client drains (resume_writing)
        self.head_buffer = b""  # a retry: not the part of a head the last upstream sent
        data = self.request.upstream_head
        if self.body:
            data = b"".join([data, *self.body])
            self.body = []
            self.body_size = 0
            self.conn.resume_for_body()
        # A fresh connection through an upstream proxy may die before answering too (the
        # upstream, not the origin): kept, to go once through another egress (retry).
        through_upstream = self.egress is not None and self.egress.upstream is not None
        replayable = (
            (reused or through_upstream) and self.request_complete
            and len(data) <= REPLAY_LIMIT
        )
        self.replay = data if replayable else None
        self.phase = _PHASE_WAITING
        upstream.write(data)
        if self.request.expects_continue and continue_clock_starts(  # (most do not)
            self.request.expects_continue,
            self.request_complete,
            self.body_received,
            self.interim_sent,
            self.timeout,
        ):
            self.continue_clock = True
            self._start_clock()  # until the 100 or the body comes

    # ---- response -------------------------------------------------------------------------

    def upstream_data(self, data: memoryview) -> None:
        """Bytes from the upstream, in its read buffer (upstream.py): body bytes go to the
        client as they are; what must outlive the call is copied."""
        self.last_seen = self.conn.loop.time()
        if self.phase is _PHASE_BODY:
            self._body_data(data)
        elif self.phase is _PHASE_WAITING:
            self._head_data(data)
        else:  # an origin talking after its response: not reusable
            self.reusable = False

    def holds_buffer(self) -> bool:
        """The client's transport kept part of the last write (a view of the read buffer)."""
        transport = self.conn.transport
        return transport is not None and bool(transport.get_write_buffer_size())

    def _head_data(self, data: memoryview) -> None:
        buffer = self.head_buffer + data if self.head_buffer else bytes(data)
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self.conn.answer(self, errors.bad_response("upstream response head too large"))
                else:
                    self.head_buffer = buffer
                return
            # "HTTP/1.x 1xx": only then can it be an interim head (the rest fail `interim`).
            if buffer[9:10] != b"1" or interim(buffer[: buffer.find(b"\r\n")]) is None:
                break
            self.interim_sent = True  # 100 Continue and friends go through as they are
            self.conn.send(buffer[: end + 4])
            if self.request_complete:
                self._start_clock()  # the final head gets a full timeout of its own
            elif self.continue_clock:
                self.stop_continue_clock()  # the body comes next, under the body rules
            buffer = buffer[end + 4 :]
            if not buffer:
                self.head_buffer = b""
                return
        self.head_buffer = b""
        assert self.request is not None and self.egress is not None
        upstream = self.upstream
        added = upstream.ip_line if upstream else b"X-ProxyMesh-IP: \r\n"
        if self.egress.not_found:
            added += ip_not_found_line(self.egress.not_found)
        not_ips = self.request.options.not_ips  # (mostly none: no call then)
        ignored = not_ips and upstream and not_honoured(not_ips, upstream.local_ip)
        if ignored:
            added += b"X-ProxyMesh-Not-IP-Ignored: " + ignored.encode() + b"\r\n"
        parsed = parse_response_head(
            buffer[:end],
            head_request=self.request.method == b"HEAD",
            client_keep_alive=self.request.keep_alive and not self.conn.draining,
            added=added,
        )
        if isinstance(parsed, ProxyError):
            self.conn.answer(self, parsed)
            return
        self.response_started = True
        self.first_byte = self.last_seen  # this read's loop time (upstream_data)
        self.status = parsed.status
        if self.timer is not None:
            self._disarm()
        self.reusable = parsed.upstream_reusable
        self.client_keep = parsed.client_keep
        self.response_framing = framing = parsed.framing
        rest = buffer[end + 4 :]
        self.phase = _PHASE_BODY
        if framing is _FRAMING_NONE:
            self.conn.send(parsed.head)
            if rest:
                self.reusable = False
            self._complete()
        elif framing is _FRAMING_LENGTH:
            self.remaining = parsed.length
            if len(rest) > parsed.length:
                rest = rest[: parsed.length]
                self.reusable = False
            self.remaining -= len(rest)
            self.conn.send(parsed.head + rest if rest else parsed.head)
            if not self.remaining:
                self._complete()
        elif framing is _FRAMING_CHUNKED:
            self.chunk_parser = httptools.HttpResponseParser(self)
            self.conn.send(parsed.head + rest if rest else parsed.head)
            self._feed_chunks(buffer)
        else:
            self.conn.send(parsed.head + rest if rest else parsed.head)

    def _body_data(self, data: memoryview) -> None:
        framing = self.response_framing
        if framing is _FRAMING_LENGTH:
            if len(data) >= self.remaining:
                if len(data) > self.remaining:
                    data = data[: self.remaining]
                    self.reusable = False
                self.remaining = 0
                self.conn.send(data)
                self._complete()
                return
            self.remaining -= len(data)
            self.conn.send(data)
        elif framing is _FRAMING_CHUNKED:
            self.conn.send(data)
            self._feed_chunks(data)
        else:
            self.conn.send(data)

    def _feed_chunks(self, data: bytes | memoryview) -> None:
        parser = self.chunk_parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            self.reusable = False
            self.conn.abort()
            return
        if self.chunk_done and self.phase is _PHASE_BODY:
            self._complete()

    # httptools callbacks for the chunked-response framing parser
    def on_message_begin(self) -> None:
        if self.chunk_done:  # bytes after the end of the response: origin is broken
            self.reusable = False

    def on_message_complete(self) -> None:
        self.chunk_done = True

    def upstream_full(self) -> None:
        self.conn.pause_for_upstream()

    def upstream_drained(self) -> None:
        self.conn.resume_for_upstream()

    def upstream_lost(self, upstream: UpstreamConnection) -> None:
        if upstream is not self.upstream:
            return
        self.upstream = None
        outcome = upstream_lost(
            self.phase,
            self.response_framing is _FRAMING_UNTIL_CLOSE,
            self.replay is not None,
            self.interim_sent,
            self.retried,
        )
        if outcome is Lost.COMPLETE:
            self._complete()
        elif outcome is Lost.ABORT:
            self.conn.abort()
        elif outcome is Lost.RETRY:
            assert self.replay is not None
            self.retried = True
            self.conn.retry(self, self.replay)
        elif outcome is Lost.BAD_GATEWAY:
            self.conn.answer(self, errors.upstream_closed())

    def _complete(self) -> None:
        self.phase = _PHASE_DONE
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.exchange = None
            if self.reusable and self.request_complete and not upstream.closed:
                self.conn.listener.services.upstreams.put(upstream)
            else:
                upstream.close()
        self.conn.finished(self, keep=self.client_keep and self.request_complete)

    # ---- response timeout and teardown -----------------------------------------------
    #
    # A timer armed and cancelled for every request costs about 1 µs of a small request's
    # ~32 (docs/benchmarks.md), so the node's sweep, which sees every open exchange once a
    # `quota_check_interval`, arms the timer only for a deadline the next sweep might see
    # too late (within two intervals): the 504 still comes at the deadline.
    #
    # The deadline counts from the end of the request, not from admission: an upload may
    # take longer than the timeout (the sweep's body rules watch it meanwhile), and the
    # final head after a 1xx gets a full timeout again.

    def arm(self, seconds: float, sweep_interval: float) -> None:
        """Answer 504 unless the response starts within `seconds` of the end of the
        request (now, for a request already complete: the connect counts too)."""
        self.timeout = seconds
        if self.request_complete:
            self._start_clock(sweep_interval)

    def body_complete(self) -> None:
        """The last of the request body has arrived: the response deadline starts now."""
        self.request_complete = True
        self.continue_clock = False
        if self.timeout and self._awaiting_response():
            self._start_clock()

    def stop_continue_clock(self) -> None:
        """The body is coming after all: its end starts the clock again."""
        self.continue_clock = False
        self.deadline = math.inf
        if self.timer is not None:
            self._disarm()

    def _start_clock(self, sweep_interval: float | None = None) -> None:
        """The deadline from now; a timer only if the sweep (every `sweep_interval`) might
        see it too late."""
        if self.timer is not None:
            self._disarm()
        if sweep_interval is None:
            sweep_interval = self.conn.listener.services.behaviour.quota_check_interval
        loop = self.conn.loop
        self.deadline = deadline = loop.time() + self.timeout
        if timer_at_start(self.timeout, sweep_interval):
            self.timer = loop.call_at(deadline, self._timed_out)

    def watch(self, now: float, sweep_interval: float) -> None:
        """The sweep's look: arm the timer if the deadline may pass before the next one."""
        if (
            self.timer is None
            and timer_due(self.deadline, now, sweep_interval)
            and self._awaiting_response()
        ):
            self.timer = self.conn.loop.call_at(self.deadline, self._timed_out)

    def _awaiting_response(self) -> bool:
        return not self.response_started and (
            self.phase is _PHASE_ADMITTING or self.phase is _PHASE_WAITING
        )

    def _timed_out(self) -> None:
        self.timer = None
        if self._awaiting_response():
            self.conn.answer(self, errors.response_timeout())

    def _disarm(self) -> None:
        timer = self.timer
        if timer is not None:
            self.timer = None
            timer.cancel()

    def discard(self) -> None:
        """The exchange is over without a complete response: drop the upstream."""
        if self.timer is not None:
            self._disarm()
        self.phase = _PHASE_DONE
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.abort()
