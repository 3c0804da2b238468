"""The connection machine's clocks: when a client connection has waited too long, and for
what. Pure (no asyncio, no socket): the driver (server/connection.py) tells a `Clocks` what
happened and when (events, with the loop's time), and once a sweep asks `judge` for a
`Verdict` to carry out (a command). Tests play sequences of events under a made-up clock.

The rules (each a `[proxy]` setting, docs/configuration.md):

| rule               | its clock starts                | verdict when it runs out      |
|--------------------|---------------------------------|-------------------------------|
| first request      | the connection opens            | CLOSE (`header_timeout`)      |
| keep-alive idle    | the previous exchange ends      | CLOSE (`idle_timeout`)        |
| request head       | its first byte                  | REQUEST_TIMEOUT (same)        |
| request body       | its last bytes, while read      | ABORT (`header_timeout`)      |
| body rate          | the head (client's clock)       | REQUEST_TIMEOUT (1)           |
| upload not taken   | reading paused for the upstream | RESPONSE_TIMEOUT (2)          |
| response body      | its last bytes, while read      | ABORT (`upstream_timeout`)    |
| client not reading | its last progress on unsent     | ABORT (`send_timeout`)        |
| tunnel idle        | its last bytes either way       | ABORT (`tunnel_idle_timeout`) |
| account refused    | a sweep finds it (quota, change)| ABORT (3)                     |
| SOCKS5 handshake   | the connection opens            | ABORT (`header_timeout`)      |

(1) `body_timeout` plus a second per `body_min_rate` bytes received (mod_reqtimeout's
MinRate). (2) the exchange's own response timeout. (3) within one sweep interval; a charge
that reaches the limit cuts at once (core/quota.py). "While read": time the proxy itself
stopped reading (flow control) is not counted against the side it stopped reading.

The response head's own deadline (504) is a timer of the exchange (server/exchange.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class Phase(IntEnum):
    """Where one exchange is (the state of an exchange)."""

    ADMITTING = 0  # credentials, policy, egress, an upstream: nothing sent yet
    WAITING = 1  # request sent (or being sent), no final response head yet
    BODY = 2  # the response head went to the client; its body follows
    DONE = 3


class Verdict(IntEnum):
    """What a sweep decides for a connection (the driver's command)."""

    NOTHING = 0
    CLOSE = 1  # quietly, after what is written (an idle connection)
    ABORT = 2  # now, without a word (a transfer that stopped: the client sees it end)
    REQUEST_TIMEOUT = 3  # answer 408 and close
    RESPONSE_TIMEOUT = 4  # answer the exchange 504 (and close if that is not safe)


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout: float
    idle_timeout: float
    body_timeout: float
    body_min_rate: float
    upstream_timeout: float
    send_timeout: float
    tunnel_idle_timeout: float


class ExchangeClock(Protocol):
    """What the rules read of the active exchange (server/exchange.Exchange)."""

    @property
    def phase(self) -> Phase: ...
    @property
    def request_complete(self) -> bool: ...
    @property
    def continue_clock(self) -> bool: ...  # its response clock runs already (100-continue)
    @property
    def body_started(self) -> float: ...  # on the client's reading clock
    @property
    def body_received(self) -> int: ...
    @property
    def timeout(self) -> float: ...  # its response timeout (0: none)
    @property
    def last_seen(self) -> float: ...  # loop time of its last upstream bytes


class Clocks:
    """The times one client connection's rules count from (loop time, seconds)."""

    __slots__ = (
        "head_started",
        "idle_since",
        "last_active",
        "paused_seconds",
        "paused_since",
        "requests",
        "unsent",
        "unsent_since",
        "writing_paused",
    )

    def __init__(self, now: float) -> None:
        self.last_active = now  # the client's (or a tunnel's) last bytes
        self.idle_since: float | None = now  # no exchange since then
        self.head_started: float | None = None  # a request head is coming
        self.requests = 0
        self.paused_since: float | None = None  # the proxy stopped reading the client
        self.paused_seconds = 0.0  # in all, before paused_since
        # The proxy stopped reading the upstream until the client drains its writes.
        self.writing_paused = False
        self.unsent = 0  # bytes not yet taken by the client at the last progress seen
        self.unsent_since = 0.0

    # ---- events ---------------------------------------------------------------------------

    def reading_paused(self, now: float) -> None:
        self.paused_since = now

    def reading_resumed(self, now: float) -> None:
        if self.paused_since is not None:
            self.paused_seconds += now - self.paused_since
            self.paused_since = None

    def reading_clock(self, now: float) -> float:
        """Seconds (from an arbitrary origin) during which the client was read: the time
        the client, not the proxy or the origin, is answerable for."""
        paused = self.paused_seconds
        if self.paused_since is not None:
            paused += now - self.paused_since
        return now - paused

    def head_begun(self, now: float) -> None:
        self.head_started = now
        self.idle_since = None  # the head's own rule runs now (408, not a quiet close)

    def head_complete(self) -> None:
        self.head_started = None
        self.idle_since = None
        self.requests += 1

    # ---- the sweep ------------------------------------------------------------------------

    def stuck(self, now: float, unsent: int, send_timeout: float) -> bool:
        """`unsent` bytes wait for the client; none taken for `send_timeout` (nginx's
        send_timeout: no progress at all, not a rate)."""
        if not unsent or unsent < self.unsent or not self.unsent:
            self.unsent = unsent
            self.unsent_since = now
            return False
        self.unsent = unsent
        return now - self.unsent_since > send_timeout


def judge(
    clocks: Clocks,
    now: float,
    limits: Limits,
    *,
    unsent: int,
    closing: bool = False,
    tunnel: bool = False,
    reading_paused: bool = False,
    exchange: ExchangeClock | None = None,
    refused: bool = False,
) -> Verdict:
    """The verdict of the rules above for one connection at `now`: `unsent` bytes wait in
    its write buffer; it is `closing` (flushing its last bytes), a `tunnel`, or serving
    `exchange`; the proxy has paused reading it (`reading_paused`); its account is
    `refused` now (a limit reached, on this node or another, or the account changed)."""
    if refused:
        return Verdict.ABORT  # the quota cut (or account change) of an open connection
    if clocks.stuck(now, unsent, limits.send_timeout):
        return Verdict.ABORT
    if closing:
        return Verdict.NOTHING
    if tunnel:
        return judge_tunnel(now, clocks.last_active, limits)
    if clocks.head_started is not None and now - clocks.head_started > limits.header_timeout:
        return Verdict.REQUEST_TIMEOUT
    if exchange is None:
        # A connection that never sent a request gets no keep-alive allowance.
        limit = limits.idle_timeout if clocks.requests else limits.header_timeout
        idle = clocks.idle_since is not None and now - clocks.idle_since > limit
        return Verdict.CLOSE if idle else Verdict.NOTHING
    if not exchange.request_complete and not exchange.continue_clock:
        if not reading_paused:
            if now - clocks.last_active > limits.header_timeout:
                return Verdict.ABORT  # a request body that stopped coming
            allowed = limits.body_timeout + exchange.body_received / limits.body_min_rate
            if clocks.reading_clock(now) - exchange.body_started > allowed:
                return Verdict.REQUEST_TIMEOUT  # or a trickle (slowloris; mod_reqtimeout)
        elif (
            exchange.timeout
            and clocks.paused_since is not None
            and now - clocks.paused_since > exchange.timeout
        ):
            # Not reading the client for longer than the response timeout: an origin (or
            # a connect) that stopped taking the body. The response deadline starts only
            # when the body is complete, so this rule stands in for it meanwhile.
            return Verdict.RESPONSE_TIMEOUT
    elif (
        exchange.phase is Phase.BODY
        and not clocks.writing_paused
        and now - exchange.last_seen > limits.upstream_timeout
    ):
        return Verdict.ABORT  # a response body that stopped coming (while it was read)
    return Verdict.NOTHING


def judge_tunnel(
    now: float, last_active: float, limits: Limits, *, refused: bool = False
) -> Verdict:
    """An open tunnel (an HTTP CONNECT's or a SOCKS5 one's), its last bytes either way at
    `last_active`: ABORT once its account is `refused` (the sweep's quota cut) or it was
    idle longer than `tunnel_idle_timeout`."""
    if refused or now - last_active > limits.tunnel_idle_timeout:
        return Verdict.ABORT
    return Verdict.NOTHING


def handshake_late(now: float, started: float, limits: Limits) -> bool:
    """A SOCKS5 handshake still not done `header_timeout` after its connection opened."""
    return now - started > limits.header_timeout


# ---- keep-alive and pipelining --------------------------------------------------------------


class Next(IntEnum):
    """What a connection does when its active exchange is over."""

    CLOSE = 0  # after what is written; nothing pipelined behind is parsed (RFC 9112 §9.6)
    NEXT = 1  # start the next queued exchange
    IDLE = 2  # wait for the next request (keep-alive)


def after_exchange(keep: bool, draining: bool, closed: bool, eof: bool, queued: bool) -> Next:
    """The exchange ended, its connection reusable (`keep`) or not; the node may be
    `draining`, the connection `closed` or half-closed by the client (`eof`), with requests
    `queued` behind it."""
    if not keep or draining or closed or eof:
        return Next.CLOSE
    return Next.NEXT if queued else Next.IDLE


def keeps_after_refusal(
    request_complete: bool, keep_alive: bool, version: str, closes: bool, draining: bool
) -> bool:
    """Whether a connection survives a refusal of the proxy's own: only an HTTP/1.1
    keep-alive request whose body has been read (or is still to be read and skipped), for
    a refusal that does not close by its nature (a framing error does), off a node that is
    not draining."""
    return request_complete and keep_alive and version == "1.1" and not closes and not draining


# ---- one exchange: its upstream lost, its response clock ------------------------------------


class Lost(IntEnum):
    """What an exchange does when its upstream connection ends under it."""

    IGNORE = 0  # not waiting for anything from it (admitting, or done)
    COMPLETE = 1  # a close-delimited body: the close is its end
    ABORT = 2  # a body cut short: the client must see its connection end
    RETRY = 3  # a pooled connection that died unanswered: the same request on a new one
    BAD_GATEWAY = 4  # nothing of the final response went out: 502 is still an answer


def upstream_lost(
    phase: Phase, until_close: bool, replayable: bool, interim_sent: bool, retried: bool
) -> Lost:
    """The upstream of an exchange in `phase` is gone. A request is resent once, only if
    it went over a reused connection and is small enough to have been kept (`replayable`)
    and no interim head (1xx) of its answer reached the client."""
    if phase is Phase.BODY:
        return Lost.COMPLETE if until_close else Lost.ABORT
    if phase is Phase.WAITING:
        if replayable and not interim_sent and not retried:
            return Lost.RETRY
        return Lost.BAD_GATEWAY
    return Lost.IGNORE


def timer_at_start(timeout: float, sweep_interval: float) -> bool:
    """Whether a response clock just started needs its own loop timer: only a deadline the
    next sweep might see too late (within two sweeps) does; later ones are armed by the
    sweep that comes within two sweeps of them (`timer_due`)."""
    return timeout < 2 * sweep_interval


def timer_due(deadline: float, now: float, sweep_interval: float) -> bool:
    return deadline - now < 2 * sweep_interval


def continue_clock_starts(
    expects_continue: bool,
    request_complete: bool,
    body_received: int,
    interim_sent: bool,
    timeout: float,
) -> bool:
    """The response clock starts with the head, before the body, for a client that sent
    `Expect: 100-continue` and waits (no body yet, no 100 passed on): the silence is the
    origin's. It stops when a 100 or body bytes come (`Exchange.stop_continue_clock`)."""
    return (
        expects_continue
        and not request_complete
        and not body_received
        and not interim_sent
        and bool(timeout)
    )
