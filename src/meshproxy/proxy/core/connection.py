"""One client connection's machine: events in, commands out (the h11 / uvicorn split).

The driver (server/connection.ClientConnection) parses bytes, owns the sockets, the tasks
and the data path (bodies, responses, charging, flow control); it tells this machine what
happened (its methods are the events) and carries out the commands each returns, in
order. The machine holds the connection's state, the active exchange, the pipelined ones
queued behind it and the admission step the active one is at, and decides with the pure
rules: `admission.standing` / `destination`, `username.steer_request`,
`machine.keeps_after_refusal`, `machine.after_exchange`, `machine.judge`.

`CONNECTION` and `ADMISSION` below are the transition tables (docs/architecture.md draws
them; tests/proxy/test_core_connection.py walks every entry). Pure: no asyncio, no
socket; its clocks are injected (`Rules.now`: the loop's, `Rules.wall`: time.time).

Cheap on purpose (it runs for every request): commands without arguments are module
singletons, a step returns a tuple, no event object is built.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, Generic, Protocol, TypeVar

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.admission import (
    Connect,
    Decision,
    Refuse,
    Resolve,
    destination,
    standing,
    unresolved,
)
from meshproxy.proxy.core.directory import AccountDirectory, AccountState, CredentialCheck
from meshproxy.proxy.core.egress import EgressChoice, EgressPool
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.machine import (
    Clocks,
    Limits,
    Next,
    Phase,
    Verdict,
    after_exchange,
    judge,
    keeps_after_refusal,
)
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.core.request import PreparedRequest, RequestHead
from meshproxy.proxy.core.username import steer_request

# ---- states ---------------------------------------------------------------------------------


class State(IntEnum):
    """Where the connection is."""

    IDLE = 0  # no exchange: before the first request, or between keep-alive exchanges
    HEAD = 1  # a request head is arriving, no exchange active
    EXCHANGE = 2  # one exchange active; later requests queued behind it
    TUNNEL = 3  # a CONNECT relay owns both sockets
    CLOSING = 4  # closed by the proxy, flushing what is written; nothing more is parsed
    CLOSED = 5  # the transport is gone


class Step(IntEnum):
    """Where the active exchange is in its admission (all of it `Phase.ADMITTING`, until
    SENT; then the exchange's own `Phase` goes on: WAITING, BODY, DONE)."""

    NONE = 0  # no exchange active
    VERIFYING = 1  # its credential on the verification threads (reading paused)
    RESOLVING = 2  # its target's name
    CONNECTING = 3  # an upstream: from the pool, else dialled
    OPENING = 4  # a CONNECT's tunnel being dialled
    SENT = 5  # attached to its upstream: the request went (or goes) out
    ANSWERED = 6  # the proxy answered it itself (a refusal, 502, 504)


class Pause(IntEnum):
    """Why the client's reading is paused (a bit each; reading resumes when none is left)."""

    PIPELINE = 1
    BUFFER = 2
    UPSTREAM = 4
    VERIFY = 8
    TUNNEL = 16


# The members under module names: on Python 3.11 `State.IDLE` is a lookup through the
# enum's metaclass (~0.15 µs, as much as a call); the machine's methods, which run for
# every request, compare with these.
IDLE, HEAD, EXCHANGE, TUNNEL, CLOSING, CLOSED = State
NO_STEP, VERIFYING, RESOLVING, CONNECTING, OPENING, SENT, ANSWERED = Step
_NEXT_CLOSE: Final = Next.CLOSE
_VERDICT_NOTHING, _VERDICT_CLOSE, _VERDICT_ABORT, _VERDICT_REQUEST_TIMEOUT = (
    Verdict.NOTHING, Verdict.CLOSE, Verdict.ABORT, Verdict.REQUEST_TIMEOUT
)

# The transition tables: (state, event) -> the states it may lead to; an event not listed
# for a state leaves it as it is (a late answer of a task for an exchange that is over, a
# head queued behind the active exchange). The events are the machine's methods.
_OPEN: Final = (State.IDLE, State.HEAD, State.EXCHANGE, State.TUNNEL)
CONNECTION: dict[tuple[State, str], frozenset[State]] = {
    (State.IDLE, "head begun"): frozenset({State.HEAD}),
    (State.IDLE, "head parsed"): frozenset({State.EXCHANGE}),
    (State.HEAD, "head parsed"): frozenset({State.EXCHANGE}),
    (State.EXCHANGE, "exchange ended"): frozenset(
        {State.IDLE, State.HEAD, State.EXCHANGE, State.CLOSING}  # HEAD: the next is coming
    ),
    (State.EXCHANGE, "refused"): frozenset({State.EXCHANGE, State.CLOSING}),  # CLOSING: cut
    (State.EXCHANGE, "tunnel started"): frozenset({State.TUNNEL}),
    (State.IDLE, "drain"): frozenset({State.CLOSING}),
    (State.HEAD, "drain"): frozenset({State.CLOSING}),
    **{(s, "tick"): frozenset({s, State.CLOSING}) for s in _OPEN},
    **{(s, "close"): frozenset({State.CLOSING}) for s in _OPEN},
    (State.TUNNEL, "tunnel closed"): frozenset({State.CLOSED}),
    (State.CLOSING, "tunnel closed"): frozenset({State.CLOSED}),  # aborted: its ends report
    **{(s, "lost"): frozenset({State.CLOSED}) for s in (*_OPEN, State.CLOSING)},
}

_STARTED: Final = frozenset(
    {Step.VERIFYING, Step.RESOLVING, Step.CONNECTING, Step.OPENING, Step.ANSWERED}
)
_ARMED: Final = (Step.RESOLVING, Step.CONNECTING, Step.OPENING, Step.SENT)  # its 504 clock runs
ADMISSION: dict[tuple[Step, str], frozenset[Step]] = {
    # No exchange active: this one starts (NONE: a decided close, nothing more starts).
    (Step.NONE, "head parsed"): _STARTED | {Step.NONE},
    (Step.VERIFYING, "credential verified"): _STARTED - {Step.VERIFYING},
    (Step.RESOLVING, "name resolved"): frozenset({Step.CONNECTING, Step.OPENING, Step.ANSWERED}),
    # Attached (CONNECTING: the connection closes meanwhile, it is dropped; pool empty:
    # it dials a new one).
    (Step.CONNECTING, "upstream ready"): frozenset({Step.SENT, Step.CONNECTING}),
    (Step.CONNECTING, "upstream failed"): frozenset({Step.ANSWERED}),
    (Step.OPENING, "upstream failed"): frozenset({Step.ANSWERED}),  # (ready: the relay next)
    (Step.OPENING, "tunnel started"): frozenset({Step.NONE}),
    (Step.SENT, "retry"): frozenset({Step.CONNECTING}),  # a stale pooled upstream
    **{(s, "refused"): frozenset({Step.ANSWERED}) for s in _ARMED},  # 502, 504, bad head
    # An upload the origin does not take: 504 (a CONNECT has no body).
    **{(s, "tick"): frozenset({s, Step.ANSWERED}) for s in _ARMED if s is not Step.OPENING},
    # Its response complete, or its answer written; the next queued one starts at once.
    **{(s, "exchange ended"): _STARTED | {Step.NONE} for s in (Step.SENT, Step.ANSWERED)},
    **{(s, "lost"): frozenset({Step.NONE}) for s in Step if s is not Step.NONE},
}


# ---- commands -------------------------------------------------------------------------------


class Command:
    __slots__ = ()


class _Named(Command):
    """A command without arguments: one instance each (compare with `is`)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The active exchange's account becomes the connection's: charge what was read, arm the
# response clock.
ADMIT: Final = _Named("ADMIT")
UNCHARGE: Final = _Named("UNCHARGE")  # refused before admission: what it read is not charged
OPEN_TUNNEL: Final = _Named("OPEN_TUNNEL")  # dial the active CONNECT's destination, then relay
CLOSE: Final = _Named("CLOSE")  # after what is written
ABORT: Final = _Named("ABORT")  # now, without a word


@dataclass(frozen=True, slots=True)
class Verify(Command):
    """Check `check` on the verification threads, then `credential_verified`."""

    check: CredentialCheck


@dataclass(frozen=True, slots=True)
class ResolveName(Command):
    """Resolve `host`, then `name_resolved` (None: it did not resolve)."""

    host: str
    port: int


# Take an idle upstream for the active exchange (its `pool_key`) from the pool:
# `upstream_ready`, or `pool_empty`. (No argument: an object less to build per request.)
TAKE_POOLED: Final = _Named("TAKE_POOLED")

PoolKey = tuple[str | None, str, int]  # (egress key, destination IP, port): the pool's key


@dataclass(frozen=True, slots=True)
class Dial(Command):
    """Connect a new upstream for `key`: `upstream_ready` or `upstream_failed`."""

    key: PoolKey


@dataclass(frozen=True, slots=True)
class Reply(Command):
    """Answer the active exchange `error`; the connection stays open if `keep`; when
    `ends`, the exchange is over (`exchange_ended`) once it is written."""

    error: ProxyError
    keep: bool
    ends: bool


@dataclass(frozen=True, slots=True)
class ReplyAndClose(Command):
    """Answer `error` (unless a response already started) and close: charge what an
    upstream got of the request, nothing more."""

    error: ProxyError


@dataclass(frozen=True, slots=True)
class Reparse(Command):
    """A refused CONNECT left the parser in tunnel mode: a fresh parser, fed what the
    client sent after the head (`exchange`'s buffered body); reading resumes."""

    exchange: ExchangeState


@dataclass(frozen=True, slots=True)
class PauseReading(Command):
    reason: Pause


@dataclass(frozen=True, slots=True)
class ResumeReading(Command):
    reason: Pause


PAUSE_PIPELINE: Final = PauseReading(Pause.PIPELINE)
RESUME_PIPELINE: Final = ResumeReading(Pause.PIPELINE)
PAUSE_VERIFY: Final = PauseReading(Pause.VERIFY)
RESUME_VERIFY: Final = ResumeReading(Pause.VERIFY)

Commands = tuple[Command, ...]
NOTHING: Commands = ()
_QUEUED: Commands = (PAUSE_PIPELINE,)
_CLOSE: Commands = (CLOSE,)
_ABORT: Commands = (ABORT,)
_TUNNEL: Commands = (ADMIT, OPEN_TUNNEL)
_POOLED: Commands = (ADMIT, TAKE_POOLED)


# ---- what the machine reads and writes of an exchange ---------------------------------------


class ExchangeState(Protocol):
    """One exchange as the machine sees it (server/exchange.Exchange)."""

    head: RequestHead
    request: PreparedRequest | None
    error: ProxyError | None  # prepare_request's refusal, then the proxy's own answer
    account: AccountState | None
    egress: EgressChoice | None
    addresses: tuple[str, int] | None
    status: int
    client_keep: bool

    @property
    def phase(self) -> Phase: ...
    @property
    def request_complete(self) -> bool: ...
    @property
    def response_started(self) -> bool: ...
    @property
    def continue_clock(self) -> bool: ...
    @property
    def body_started(self) -> float: ...
    @property
    def body_received(self) -> int: ...
    @property
    def timeout(self) -> float: ...
    @property
    def last_seen(self) -> float: ...


X = TypeVar("X", bound=ExchangeState)


def pool_key(exchange: ExchangeState) -> PoolKey:
    """The upstream pool's key for a routed exchange: its egress and destination."""
    egress, addresses = exchange.egress, exchange.addresses
    assert egress is not None and addresses is not None
    return (egress.key, addresses[0], addresses[1])


@dataclass(slots=True, eq=False)
class Rules:
    """What every connection of one listener decides with (built once per listener)."""

    listener: str  # its name: the account's standing is per listener
    directory: AccountDirectory
    policy: DestinationPolicy
    pool: EgressPool
    cached: Callable[[str], Sequence[str] | None]  # the resolver's cache: addresses, or None
    limits: Limits
    now: Callable[[], float]  # the loop's clock (the timeout rules)
    wall: Callable[[], float] = field(default=time.time)  # the directory's (bans, caches)


class ConnectionMachine(Generic[X]):
    """One client connection's state and the decisions of its admission and its ends."""

    __slots__ = (
        "active",
        "client_ip",
        "clocks",
        "draining",
        "eof",
        "queue",
        "rules",
        "state",
        "step",
    )

    def __init__(self, rules: Rules, clocks: Clocks, client_ip: str = "") -> None:
        self.rules = rules
        self.clocks = clocks  # shared with the driver, which times the data path on it
        self.client_ip = client_ip
        self.state = IDLE
        self.step = NO_STEP  # the active exchange's
        self.active: X | None = None
        # A list, not a deque: an empty deque is 760 bytes, the largest part of an idle
        # tunnel's connection; queues are a few requests long.
        self.queue: list[X] = []
        self.draining = False  # the node stops: no keep-alive after the current exchange
        self.eof = False  # the client half-closed

    @property
    def closed(self) -> bool:
        return self.state >= CLOSING

    # ---- events from the parser ---------------------------------------------------------

    def head_begun(self, now: float) -> None:
        """A request head's first byte."""
        self.clocks.head_begun(now)
        if self.state is IDLE:
            self.state = HEAD

    def head_parsed(self, exchange: X) -> Commands:
        """A complete request head became `exchange`: start it, or queue it."""
        self.clocks.head_complete()
        if self.state >= CLOSING:
            return NOTHING  # RFC 9112 §9.6: nothing after a decided close is processed
        if self.active is not None:
            self.queue.append(exchange)
            return _QUEUED
        self.active = exchange
        self.state = EXCHANGE
        return self._start(exchange)

    def client_eof(self) -> bool:
        """The client half-closed; whether to keep the connection for the active exchange's
        response (it closes once that is written: `after_exchange`)."""
        self.eof = True
        return self.active is not None

    # ---- admission ------------------------------------------------------------------------

    def _start(self, exchange: X) -> Commands:
        if exchange.error is not None:
            return (UNCHARGE, *self._refuse(exchange, exchange.error))
        request = exchange.request
        assert request is not None
        rules = self.rules
        result = rules.directory.authenticate(self.client_ip, request.authorization, rules.wall())
        if isinstance(result, CredentialCheck):
            self.step = VERIFYING
            return (PAUSE_VERIFY, Verify(result))
        return self._authenticated(exchange, request, result)

    def credential_verified(self, exchange: X, check: CredentialCheck, ok: bool) -> Commands:
        """The verification threads' answer for `check`, made for `exchange`."""
        if exchange is not self.active or self.step is not VERIFYING or self.closed:
            return (RESUME_VERIFY,)
        request = exchange.request
        assert request is not None
        answer = self.rules.directory.verified(check, ok, self.rules.wall())
        return (RESUME_VERIFY, *self._authenticated(exchange, request, answer))

    def _authenticated(
        self, exchange: X, request: PreparedRequest, answer: AccountState | ProxyError
    ) -> Commands:
        rules = self.rules
        admitted = standing(answer, rules.directory, rules.listener)
        if isinstance(admitted, Refuse):
            if not isinstance(answer, ProxyError):
                # A known account refused here (402, 403, 509): its line and statistics
                # name it; nothing is charged.
                exchange.account = answer
            return (UNCHARGE, *self._refuse(exchange, admitted.error))
        exchange.account = admitted
        refusal = steer_request(request, rules.directory.logins, admitted.id)
        if refusal is not None:
            return (UNCHARGE, *self._refuse(exchange, refusal))
        host = request.target.host
        decision = destination(host, rules.cached(host), rules.policy, rules.pool, request.options)
        if isinstance(decision, Connect):  # the usual case first, without a second tuple
            self._route(exchange, decision)
            if request.connect:
                self.step = OPENING
                return _TUNNEL
            return _POOLED
        return (ADMIT, *self._decided(exchange, request, decision))

    def name_resolved(self, exchange: X, addresses: Sequence[str] | None) -> Commands:
        """The addresses of `exchange`'s target (None: it did not resolve)."""
        if exchange is not self.active or self.step is not RESOLVING or self.closed:
            return NOTHING
        request = exchange.request
        assert request is not None
        host = request.target.host
        rules = self.rules
        decision: Decision = (
            unresolved(host) if addresses is None
            else destination(host, addresses, rules.policy, rules.pool, request.options)
        )
        return self._decided(exchange, request, decision)

    def _decided(self, exchange: X, request: PreparedRequest, decision: Decision) -> Commands:
        """Carry out admission's `decision` for `exchange` (core/admission.py)."""
        if isinstance(decision, Connect):
            self._route(exchange, decision)
            if request.connect:
                self.step = OPENING
                return (OPEN_TUNNEL,)
            return (TAKE_POOLED,)
        if isinstance(decision, Resolve):
            self.step = RESOLVING
            return (ResolveName(decision.host, request.target.port),)
        return self._refuse(exchange, decision.error)

    def _route(self, exchange: X, connect: Connect) -> None:
        request = exchange.request
        assert request is not None
        exchange.egress = connect.egress
        exchange.addresses = (connect.address, request.target.port)
        self.step = CONNECTING

    def pool_empty(self, exchange: X) -> Commands:
        """No idle upstream for `exchange`: dial one."""
        if exchange is not self.active or self.step is not CONNECTING:
            return NOTHING
        return (Dial(pool_key(exchange)),)

    def upstream_ready(self, exchange: X) -> bool:
        """An upstream (pooled or new), or a CONNECT's socket, for `exchange`: whether to
        use it (attach, relay) or to drop it (the exchange is over, or the connection). A
        tunnel stays OPENING until its relay starts (`tunnel_started`): setting it up may
        still fail (`upstream_failed`)."""
        step = self.step
        if exchange is not self.active or self.state >= CLOSING:  # (`closed`, inline)
            return False
        if step is CONNECTING:
            self.step = SENT
            return True
        return step is OPENING

    def upstream_failed(self, exchange: X, error: ProxyError) -> Commands:
        """The connect for `exchange` failed (`error`: 502 saying why, or 504)."""
        step = self.step
        if (
            exchange is not self.active
            or not (step is CONNECTING or step is OPENING)
            or self.closed
        ):
            return NOTHING
        return self._refuse(exchange, error)

    def retry(self, exchange: X) -> Commands:
        """`exchange`'s pooled upstream died unanswered: the same request on a new one. One
        through an upstream proxy goes through another egress of the pool when there is
        one (the upstream may be what died)."""
        if exchange is not self.active or self.closed:
            return NOTHING
        failed, addresses, request = exchange.egress, exchange.addresses, exchange.request
        assert failed is not None and addresses is not None and request is not None
        if failed.upstream is not None:
            ip = addresses[0]
            other = self.rules.pool.choose(request.options, 6 if ":" in ip else 4,
                                           avoid=failed.egress)
            if isinstance(other, EgressChoice):
                exchange.egress = other
        self.step = CONNECTING
        return (Dial(pool_key(exchange)),)

    # ---- the ends of exchanges ------------------------------------------------------------

    def refused(self, exchange: X, error: ProxyError) -> Commands:
        """The proxy answers `exchange` itself (a refusal, 502, 504, a bad response head):
        keep the connection when that is safe."""
        if exchange is not self.active:
            return NOTHING
        return self._refuse(exchange, error)

    def _refuse(self, exchange: X, error: ProxyError) -> Commands:
        if self.step is ANSWERED:
            return NOTHING  # answered already (a timer and a failure in the same turn)
        exchange.error = error  # for the access log, as for a request refused at once
        self.step = ANSWERED
        if exchange.response_started:
            return self._closing(_ABORT)  # the client must see its response cut
        exchange.status = error.status
        head = exchange.head
        complete = exchange.request_complete
        keep = keeps_after_refusal(
            complete, head.keep_alive, head.version, error.close, self.draining
        )
        exchange.client_keep = keep
        return (Reply(error, keep, complete or not keep),)

    def exchange_ended(self, exchange: X, keep: bool) -> Commands:
        """The active exchange is over (its response complete, or the proxy's answer
        written), the connection reusable (`keep`) or not: what follows."""
        if exchange is not self.active:
            return NOTHING
        self.active = None
        self.step = NO_STEP
        rules = self.rules
        queue = self.queue
        closed = self.state >= CLOSING
        if after_exchange(keep, self.draining, closed, self.eof, bool(queue)) is _NEXT_CLOSE:
            return self._closing(_CLOSE)
        request = exchange.request
        reparse: Commands = (
            (Reparse(exchange),) if request is not None and request.connect else NOTHING
        )
        clocks = self.clocks
        clocks.idle_since = rules.now()
        if queue:
            following = queue.pop(0)
            self.active = following
            clocks.idle_since = None
            started = self._start(following)
            if queue:  # more behind it: reading stays paused
                return (*reparse, *started) if reparse else started
            return (*reparse, RESUME_PIPELINE, *started)
        # Idle. Reading is not paused for the pipeline: it resumed when the last queued
        # exchange started (above), and nothing else pauses it for PIPELINE.
        self.state = HEAD if clocks.head_started is not None else IDLE
        return reparse

    def tunnel_started(self) -> None:
        """The active CONNECT's relay owns both sockets now."""
        self.active = None
        self.step = NO_STEP
        self.state = TUNNEL

    # ---- the connection's end -------------------------------------------------------------

    def close(self) -> tuple[X | None, Sequence[X]]:
        """The proxy closes (after what is written): the active exchange and the queued
        ones, to discard. Nothing after this is admitted (RFC 9112 §9.6)."""
        if self.state < CLOSING:
            self.state = CLOSING
        return self.active, self.queue

    def tunnel_closed(self) -> None:
        self.state = CLOSED

    def lost(self) -> tuple[X | None, Sequence[X]]:
        """The transport is gone: the exchanges to discard; none is left active."""
        active, queued = self.active, tuple(self.queue)
        self.active = None
        self.queue.clear()
        self.step = NO_STEP
        self.state = CLOSED
        return active, queued

    def drain(self) -> Commands:
        """The node stops: close after the current exchange (now, when there is none)."""
        self.draining = True
        if self.active is None and self.state < TUNNEL:
            return self._closing(_CLOSE)
        return NOTHING

    # ---- the sweep ------------------------------------------------------------------------

    def tick(
        self, now: float, *, unsent: int, reading_paused: bool, refused: bool
    ) -> Commands:
        """The node's sweep at `now` (`machine.judge`): `unsent` bytes wait for the client,
        the proxy paused reading it, its account is `refused` now (a limit, a change)."""
        state = self.state
        exchange = self.active
        verdict = judge(
            self.clocks, now, self.rules.limits, unsent=unsent,
            closing=state >= CLOSING, tunnel=state is TUNNEL,
            reading_paused=reading_paused, exchange=exchange, refused=refused,
        )
        if verdict is _VERDICT_NOTHING:
            return NOTHING
        if verdict is _VERDICT_ABORT:
            return self._closing(_ABORT)
        if verdict is _VERDICT_CLOSE:
            return self._closing(_CLOSE)
        if verdict is _VERDICT_REQUEST_TIMEOUT:
            return self._closing((ReplyAndClose(errors.request_timeout()),))
        if exchange is not None:  # RESPONSE_TIMEOUT
            return self._refuse(exchange, errors.response_timeout())
        return NOTHING

    def _closing(self, commands: Commands) -> Commands:
        """The machine decided to close: nothing more is admitted from here on."""
        if self.state < CLOSING:
            self.state = CLOSING
        return commands
