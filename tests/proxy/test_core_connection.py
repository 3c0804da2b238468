"""Playbooks for the connection machine (proxy/core/connection.py): sequences of events
in, the commands out, under a made-up clock. No sockets, no loop: milliseconds.

Every event goes through `Play`, which also records the state and admission step before
and after it; `test_every_transition_is_in_the_tables` runs all the playbooks and checks
each move they made against `CONNECTION` and `ADMISSION`, and that each entry of the
tables was walked."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from meshproxy.domain.limits import Limits as AccountLimits
from meshproxy.domain.units import GB
from meshproxy.proxy.core import socks5
from meshproxy.proxy.core.connection import (
    ABORT,
    ADMISSION,
    ADMIT,
    CLOSE,
    CONNECTION,
    OPEN_TUNNEL,
    PAUSE_PIPELINE,
    PAUSE_VERIFY,
    RESUME_PIPELINE,
    RESUME_VERIFY,
    TAKE_POOLED,
    UNCHARGE,
    Commands,
    ConnectionMachine,
    Dial,
    Reparse,
    Reply,
    ReplyAndClose,
    ResolveName,
    Rules,
    State,
    Step,
    Verify,
)
from meshproxy.proxy.core.directory import AccountState, CredentialCheck
from meshproxy.proxy.core.egress import Egress, EgressChoice, EgressPool
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.machine import Clocks, Phase
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.core.request import Body, PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.server.socks import SocksRequest

from .test_core_directory import T, basic, directory, record, view
from .test_machine_timeouts import LIMITS
from .test_machine_timeouts import FakeExchange as ClockedExchange

POLICY = DestinationPolicy(["127.0.0.0/8"])
EGRESS = "127.0.0.2"
ALICE = basic("alice", "pw")
KEY = (EgressChoice(EGRESS).key, "127.0.0.1", 8080)  # the pool's key for origin.test
R = TypeVar("R")


class Clock:
    """The loop's clock, moved by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass(kw_only=True)
class FakeExchange(ClockedExchange):
    """An exchange as the machine reads and writes it (server/exchange.Exchange): what the
    timeout rules read of it, and its admission's fields."""

    head: RequestHead
    request: PreparedRequest | None = None
    error: ProxyError | None = None
    account: AccountState | None = None
    egress: EgressChoice | None = None
    addresses: tuple[str, int] | None = None
    status: int = 0
    client_keep: bool = False
    phase: Phase = Phase.ADMITTING
    response_started: bool = False

    def __post_init__(self) -> None:
        prepared = prepare_request(self.head)
        if isinstance(prepared, ProxyError):
            self.error = prepared
        else:
            self.request = prepared
            chunked = prepared.body is Body.CHUNKED
            self.request_complete = not chunked and not prepared.content_length


def exchange(
    target: bytes = b"http://origin.test:8080/", *, method: bytes = b"GET",
    auth: bytes | None = ALICE, keep_alive: bool = True, version: str = "1.1",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> FakeExchange:
    host = target.split(b"//")[-1].split(b"/")[0]
    lines = [(b"Host", host), *(headers or [])]
    if auth is not None:
        lines.append((b"Proxy-Authorization", auth))
    return FakeExchange(head=RequestHead(method, target, version, lines, keep_alive))


@dataclass
class Play:
    """One connection's machine, and what its events did (for the table walk)."""

    names: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"origin.test": ("127.0.0.1",), "far.test": ("10.9.9.9",)}
    )
    clock: Clock = field(default_factory=Clock)
    pool: EgressPool = field(
        default_factory=lambda: EgressPool([Egress(EGRESS, None)], geo=False,
                                           rng=random.Random(1))
    )
    moves: list[tuple[str, State, State, Step, Step]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory = directory(
            view(record(1, "alice")),
            view(record(2, "capped", limits=AccountLimits(monthly_gb=1))),
        )
        rules = Rules(
            listener="open", directory=self.directory, policy=POLICY, pool=self.pool,
            cached=self.names.get, limits=LIMITS, now=self.clock,
            wall=lambda: T + self.clock.now,
        )
        self.machine: ConnectionMachine[FakeExchange] = ConnectionMachine(
            rules, Clocks(0.0), "10.0.0.1"
        )
        PLAYS.append(self)

    def _do(self, event: str, act: Callable[[], R]) -> R:
        m = self.machine
        state, step = m.state, m.step
        result = act()
        self.moves.append((event, state, m.state, step, m.step))
        return result

    # ---- the events, as the driver sends them ----------------------------------------------

    def request(self, ex: FakeExchange) -> Commands:
        """A head's first byte, then the whole head (one read)."""
        self.head_begun()
        return self.head_parsed(ex)

    def head_begun(self) -> None:
        self._do("head begun", lambda: self.machine.head_begun(self.clock.now))

    def head_parsed(self, ex: FakeExchange) -> Commands:
        return self._do("head parsed", lambda: self.machine.head_parsed(ex))

    def verified(self, ex: FakeExchange, commands: Commands) -> Commands:
        """The verification threads' work for the Verify among `commands`, then its event."""
        check = next(c.check for c in commands if isinstance(c, Verify))
        assert isinstance(check, CredentialCheck)
        ok = self.directory.verify(check)
        return self._do("credential verified",
                        lambda: self.machine.credential_verified(ex, check, ok))

    def resolved(self, ex: FakeExchange, addresses: tuple[str, ...] | None) -> Commands:
        return self._do("name resolved", lambda: self.machine.name_resolved(ex, addresses))

    def pool_empty(self, ex: FakeExchange) -> Commands:
        return self._do("pool empty", lambda: self.machine.pool_empty(ex))

    def ready(self, ex: FakeExchange) -> bool:
        used = self._do("upstream ready", lambda: self.machine.upstream_ready(ex))
        if used and ex.request is not None and not ex.request.connect:
            ex.phase = Phase.WAITING  # what Exchange.attach does
        return used

    def failed(self, ex: FakeExchange, error: ProxyError) -> Commands:
        return self._do("upstream failed", lambda: self.machine.upstream_failed(ex, error))

    def retry(self, ex: FakeExchange) -> Commands:
        return self._do("retry", lambda: self.machine.retry(ex))

    def refused(self, ex: FakeExchange, error: ProxyError) -> Commands:
        return self._do("refused", lambda: self.machine.refused(ex, error))

    def ended(self, ex: FakeExchange, keep: bool = True) -> Commands:
        ex.phase = Phase.DONE
        return self._do("exchange ended", lambda: self.machine.exchange_ended(ex, keep))

    def tunnel_started(self) -> None:
        self._do("tunnel started", self.machine.tunnel_started)

    def tunnel_closed(self) -> None:
        self._do("tunnel closed", self.machine.tunnel_closed)

    def close(self) -> tuple[FakeExchange | None, Sequence[FakeExchange]]:
        return self._do("close", self.machine.close)

    def lost(self) -> tuple[FakeExchange | None, Sequence[FakeExchange]]:
        return self._do("lost", self.machine.lost)

    def drain(self) -> Commands:
        return self._do("drain", self.machine.drain)

    def tick(self, at: float, *, unsent: int = 0, paused: bool = False,
             refused: bool = False) -> Commands:
        self.clock.now = at
        return self._do("tick", lambda: self.machine.tick(
            at, unsent=unsent, reading_paused=paused, refused=refused))

    # ---- the driver's side of a request that goes ---------------------------------------

    def served(self, ex: FakeExchange) -> Commands:
        """A request by a known credential, through a pooled upstream, answered: what its
        end gives."""
        assert self.request(ex) == (ADMIT, TAKE_POOLED)
        assert self.ready(ex)
        return self.ended(ex, keep=ex.head.keep_alive)


PLAYS: list[Play] = []


def verified_once(play: Play) -> None:
    """alice's credential checked on the threads, so later requests find it cached."""
    first = exchange()
    commands = play.request(first)
    assert commands == (PAUSE_VERIFY, Verify(commands[1].check))  # type: ignore[attr-defined]
    assert play.verified(first, commands) == (RESUME_VERIFY, ADMIT, TAKE_POOLED)
    assert play.pool_empty(first) == (Dial(KEY),)
    assert play.ready(first)
    assert play.ended(first) == ()  # idle: nothing to do until the next head


# ---- keep-alive ---------------------------------------------------------------------------------


def test_a_new_credential_is_verified_then_the_request_dials_and_the_connection_idles() -> None:
    play = Play()
    play.clock.now = 2.5
    verified_once(play)
    m = play.machine
    assert (m.state, m.step, m.active) == (State.IDLE, Step.NONE, None)
    assert m.clocks.idle_since == 2.5 and m.clocks.requests == 1  # keep-alive idle from here


def test_a_known_credential_goes_at_once_through_the_pool() -> None:
    play = Play()
    verified_once(play)
    second = exchange()
    assert play.served(second) == ()
    assert second.account is not None and second.account.username == "alice"
    assert second.addresses == ("127.0.0.1", 8080) and second.egress == EgressChoice(EGRESS)


def test_connection_close_or_http_1_0_ends_the_connection_after_the_response() -> None:
    for ex in (exchange(keep_alive=False), exchange(version="1.0", keep_alive=False)):
        play = Play()
        verified_once(play)
        assert play.served(ex) == (CLOSE,)
        assert play.machine.state is State.CLOSING


def test_a_client_that_half_closes_gets_its_response_then_the_close() -> None:
    play = Play()
    verified_once(play)
    ex = exchange()
    play.request(ex)
    assert play.machine.client_eof()  # keep the transport: a response is due
    assert play.ready(ex) and play.ended(ex) == (CLOSE,)
    idle = Play()
    assert not idle.machine.client_eof()  # nothing due: let it close


def test_a_drained_node_closes_idle_connections_at_once_busy_ones_after_the_exchange() -> None:
    idle = Play()
    assert idle.drain() == (CLOSE,) and idle.machine.state is State.CLOSING
    busy = Play()
    verified_once(busy)
    ex = exchange()
    busy.request(ex)
    assert busy.drain() == ()
    assert busy.ready(ex) and busy.ended(ex) == (CLOSE,)


# ---- pipelining ---------------------------------------------------------------------------------


def test_pipelined_requests_queue_pause_reading_and_run_in_order() -> None:
    play = Play()
    verified_once(play)
    first, second, third = exchange(), exchange(), exchange()
    assert play.request(first) == (ADMIT, TAKE_POOLED)
    assert play.request(second) == (PAUSE_PIPELINE,)
    assert play.request(third) == (PAUSE_PIPELINE,)
    assert play.ready(first)
    # The second starts; the third still waits, so reading stays paused.
    assert play.ended(first) == (ADMIT, TAKE_POOLED)
    assert play.machine.active is second
    assert play.ready(second)
    assert play.ended(second) == (RESUME_PIPELINE, ADMIT, TAKE_POOLED)
    assert play.ready(third)
    assert play.ended(third) == ()  # reading resumed when the third started


def test_nothing_queued_behind_a_close_starts() -> None:
    play = Play()
    verified_once(play)
    closing, behind = exchange(keep_alive=False), exchange()
    play.request(closing)
    play.request(behind)
    assert play.ready(closing) and play.ended(closing, keep=False) == (CLOSE,)
    assert play.machine.active is None and list(play.machine.queue) == [behind]
    assert behind.account is None  # never admitted, never charged
    # A head parsed from the same read after the decided close is not started either.
    assert play.head_parsed(exchange()) == ()


def test_a_refusal_that_closes_stops_what_was_pipelined_behind_it() -> None:
    """Two Host headers (a framing refusal that closes, RFC 9112 §3.2): 400, the close, and
    the request behind it never reaches admission."""
    play = Play()
    verified_once(play)
    bad = exchange(headers=[(b"Host", b"other.test")])
    assert bad.error is not None and bad.error.close
    behind = exchange()
    commands = play.request(bad)
    assert commands == (UNCHARGE, Reply(bad.error, keep=False, ends=True))
    play.head_parsed(behind)  # it came in the same read
    assert play.ended(bad, keep=False) == (CLOSE,)
    assert behind.account is None and behind.addresses is None


def test_a_refusal_of_a_bodiless_keep_alive_request_keeps_the_connection() -> None:
    play = Play()
    wrong = exchange(auth=basic("alice", "nope"))
    commands = play.request(wrong)
    reply = play.verified(wrong, commands)
    assert reply[:2] == (RESUME_VERIFY, UNCHARGE)
    assert isinstance(reply[2], Reply) and reply[2].error.status == 407
    assert reply[2].keep and reply[2].ends and wrong.status == 407
    assert play.ended(wrong) == ()
    assert play.machine.state is State.IDLE


def test_a_known_account_refused_here_is_named_and_nothing_is_charged() -> None:
    play = Play()
    play.directory.by_username["capped"].add_usage(GB)
    ex = exchange(auth=basic("capped", "pw"))
    commands = play.verified(ex, play.request(ex))
    assert commands[:2] == (RESUME_VERIFY, UNCHARGE)
    assert isinstance(commands[2], Reply) and commands[2].error.status == 509
    assert ex.account is not None and ex.account.username == "capped"


# ---- admission: names, policy, connects ---------------------------------------------------------


def test_an_unknown_name_is_resolved_then_routed() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"http://new.test:8080/")
    assert play.request(ex) == (ADMIT, ResolveName("new.test", 8080))
    assert play.machine.step is Step.RESOLVING
    assert play.resolved(ex, ("127.0.0.1",)) == (TAKE_POOLED,)


def test_a_name_that_does_not_resolve_is_answered_502() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"http://nowhere.test:8080/")
    play.request(ex)
    (reply,) = play.resolved(ex, None)
    assert isinstance(reply, Reply) and reply.error.status == 502 and reply.keep


def test_a_forbidden_destination_is_answered_403_after_admission() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"http://far.test:8080/")
    admit, reply = play.request(ex)
    assert admit is ADMIT  # the account was admitted: what it sent is charged
    assert isinstance(reply, Reply) and reply.error.status == 403


def test_a_failed_connect_is_answered_and_a_late_answer_changes_nothing() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"http://new.test:8080/")
    play.request(ex)
    play.resolved(ex, ("127.0.0.1",))
    play.pool_empty(ex)
    timeout = ProxyError(504, "connect timed out", "connection_timeout")
    assert play.failed(ex, timeout) == (Reply(timeout, keep=True, ends=True),)
    # The connect that completes anyway, and a second answer, are dropped.
    assert not play.ready(ex)
    assert play.refused(ex, timeout) == ()
    assert play.resolved(ex, ("127.0.0.1",)) == ()


def test_a_stale_pooled_upstream_is_retried_on_a_new_connection() -> None:
    play = Play()
    verified_once(play)
    ex = exchange()
    play.request(ex)
    assert play.ready(ex)
    assert play.retry(ex) == (Dial(KEY),)
    assert play.machine.step is Step.CONNECTING
    assert play.ready(ex)  # the new connection


def test_a_bad_response_head_is_answered_502_and_a_cut_response_aborts() -> None:
    play = Play()
    verified_once(play)
    ex = exchange()
    play.request(ex)
    play.ready(ex)
    bad = ProxyError(502, "bad response", "http_protocol_error")
    assert play.refused(ex, bad) == (Reply(bad, keep=True, ends=True),)
    later = exchange()
    play.ended(ex)
    play.request(later)
    play.ready(later)
    later.response_started = True  # its head went to the client already
    assert play.refused(later, bad) == (ABORT,) and play.machine.state is State.CLOSING


# ---- timeouts -----------------------------------------------------------------------------------


def test_a_connection_that_never_sends_a_request_closes_at_the_header_timeout() -> None:
    play = Play()
    assert play.tick(29.0) == ()
    assert play.tick(30.5) == (CLOSE,) and play.machine.state is State.CLOSING


def test_keep_alive_idle_closes_at_the_idle_timeout_after_the_last_exchange() -> None:
    play = Play()
    play.clock.now = 10.0
    verified_once(play)
    assert play.tick(129.0) == ()
    assert play.tick(130.5) == (CLOSE,)


def test_a_head_that_stops_coming_gets_408_and_the_close() -> None:
    play = Play()
    play.clock.now = 5.0
    play.head_begun()
    assert play.machine.state is State.HEAD
    assert play.tick(34.0) == ()
    (reply,) = play.tick(35.5)
    assert isinstance(reply, ReplyAndClose)
    assert (reply.error.status, play.machine.state) == (408, State.CLOSING)


def test_an_upload_the_origin_does_not_take_is_answered_504_and_closed() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(method=b"POST", headers=[(b"Content-Length", b"100000")])
    assert not ex.request_complete
    play.request(ex)
    play.ready(ex)
    play.machine.clocks.reading_paused(1.0)  # the upstream's buffer is full
    assert play.tick(30.0, paused=True) == ()
    (reply,) = play.tick(31.5, paused=True)
    # The body is unread: the connection cannot be kept.
    assert isinstance(reply, Reply) and reply.error.status == 504
    assert not reply.keep and reply.ends and play.machine.step is Step.ANSWERED


def test_a_client_waiting_for_100_continue_is_not_timed_out_for_its_body() -> None:
    """Expect: 100-continue: the client sends no body until the 100 (or the response), so
    the body rules wait (the exchange's response clock runs instead); without it, a body
    that does not come is a 408."""
    for waiting, expected in ((True, ()), (False, "408")):
        play = Play()
        verified_once(play)
        ex = exchange(method=b"POST", headers=[(b"Content-Length", b"10")])
        ex.continue_clock = waiting
        play.request(ex)
        play.ready(ex)
        play.machine.clocks.last_active = 70.0  # the client talks (no body yet)
        commands = play.tick(75.0)
        if expected == "408":
            assert isinstance(commands[0], ReplyAndClose) and commands[0].error.status == 408
        else:
            assert commands == expected


def test_a_response_that_stops_coming_is_cut_but_not_while_the_client_is_not_reading() -> None:
    play = Play()
    verified_once(play)
    ex = exchange()
    play.request(ex)
    play.ready(ex)
    ex.phase, ex.last_seen = Phase.BODY, 1.0
    play.machine.clocks.writing_paused = True  # the proxy stopped reading the origin itself
    assert play.tick(40.0) == ()
    play.machine.clocks.writing_paused = False
    assert play.tick(41.5) == (ABORT,)


# ---- quota cut and tunnels ----------------------------------------------------------------------


def test_an_account_refused_by_the_sweep_is_cut_at_once() -> None:
    play = Play()
    verified_once(play)
    ex = exchange()
    play.request(ex)
    play.ready(ex)
    assert play.tick(1.0, refused=True) == (ABORT,) and play.machine.closed


def test_a_connect_opens_a_tunnel_that_idles_out() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"origin.test:8080", method=b"CONNECT")
    assert play.request(ex) == (ADMIT, OPEN_TUNNEL)
    assert play.ready(ex) and play.machine.step is Step.OPENING
    play.tunnel_started()
    m = play.machine
    assert (m.state, m.active) == (State.TUNNEL, None)
    m.clocks.last_active = 10.0
    assert play.tick(900.0) == ()
    assert play.tick(910.5) == (ABORT,)
    play.tunnel_closed()
    assert m.state is State.CLOSED


def test_a_tunnel_whose_relay_fails_is_answered_502() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"origin.test:8080", method=b"CONNECT")
    play.request(ex)
    play.ready(ex)  # the socket came; the relay over it failed
    error = ProxyError(502, "cannot connect", "connection_refused")
    assert play.failed(ex, error) == (Reply(error, keep=True, ends=True),)


def test_a_refused_connect_gets_a_fresh_parser_for_what_follows() -> None:
    play = Play()
    verified_once(play)
    ex = exchange(b"far.test:8080", method=b"CONNECT")
    admit, reply = play.request(ex)
    assert admit is ADMIT and isinstance(reply, Reply) and reply.error.status == 403
    assert play.ended(ex) == (Reparse(ex),)


def test_the_transport_lost_leaves_nothing_active() -> None:
    play = Play()
    verified_once(play)
    ex, behind = exchange(), exchange()
    play.request(ex)
    play.request(behind)
    active, queued = play.lost()
    assert active is ex and list(queued) == [behind]
    assert (play.machine.state, play.machine.active, play.machine.step) == (
        State.CLOSED, None, Step.NONE)


def test_closing_hands_back_what_to_discard_and_admits_nothing_more() -> None:
    play = Play()
    verified_once(play)
    ex, behind = exchange(), exchange()
    play.request(ex)
    play.request(behind)
    active, queued = play.close()
    assert active is ex and list(queued) == [behind] and play.machine.state is State.CLOSING
    assert not play.ready(ex)  # a connect that completes now is dropped
    assert play.head_parsed(exchange()) == ()  # and nothing more is admitted


# ---- SOCKS5: the same admission ----------------------------------------------------------------


def socks_machine(verified: bool = True) -> ConnectionMachine[SocksRequest]:
    """A SOCKS5 connection's machine over a Play's rules (alice's login `verified`)."""
    play = Play()
    if verified:
        verified_once(play)  # the login checked alice's credential
    return ConnectionMachine(play.machine.rules, Clocks(0.0), "10.0.0.1")


def test_a_socks5_connect_is_admitted_by_the_same_events_and_rules() -> None:
    """The SOCKS5 listener's CONNECT (server/socks.SocksRequest) goes through the machine
    as an HTTP CONNECT does; its refusals become reply codes (socks5.reply_code)."""
    machine = socks_machine()
    tunnel = SocksRequest("origin.test", 8080, ALICE)
    assert machine.head_parsed(tunnel) == (ADMIT, OPEN_TUNNEL)
    assert tunnel.addresses == ("127.0.0.1", 8080) and tunnel.account is not None
    assert machine.upstream_ready(tunnel)
    machine.tunnel_started()
    assert machine.state is State.TUNNEL
    for host, code in (("far.test", socks5.NOT_ALLOWED), ("new.test", socks5.HOST_UNREACHABLE)):
        machine = socks_machine()
        refused = SocksRequest(host, 8080, ALICE)
        commands = machine.head_parsed(refused)
        if host == "new.test":
            assert commands == (ADMIT, ResolveName("new.test", 8080))
            commands = machine.name_resolved(refused, None)
        reply = commands[-1]
        assert isinstance(reply, Reply)
        assert socks5.reply_code(reply.error.status, reply.error.proxy_status) == code
    (_, reply) = socks_machine(False).head_parsed(SocksRequest("origin.test", 8080, None))
    assert isinstance(reply, Reply) and reply.error.status == 407


# ---- every state and step, each way out ---------------------------------------------------------


def at(where: State | Step) -> tuple[Play, FakeExchange | None]:
    """A connection in state `where`, or with its active exchange at step `where`."""
    play = Play()
    if where is State.IDLE:
        return play, None
    if where is State.HEAD:
        play.head_begun()
        return play, None
    if where is Step.VERIFYING:
        ex = exchange()
        play.request(ex)
        return play, ex
    verified_once(play)
    # (State and Step are both IntEnums: compared with `is`, never as dict keys together.)
    method, target = b"GET", b"http://origin.test:8080/"  # CONNECTING, SENT, EXCHANGE
    if where is Step.RESOLVING:
        target = b"http://new.test:8080/"
    elif where is Step.ANSWERED:
        target = b"http://far.test:8080/"  # the policy refuses it
    elif where is Step.OPENING or where is State.TUNNEL:
        method, target = b"CONNECT", b"origin.test:8080"
    ex = exchange(target, method=method)
    play.request(ex)
    if where is Step.SENT:
        play.ready(ex)
    if where is State.TUNNEL:
        play.ready(ex)
        play.tunnel_started()
    assert where in (play.machine.state, play.machine.step)
    return play, ex


OPEN_STATES = (State.IDLE, State.HEAD, State.EXCHANGE, State.TUNNEL)
STEPS = (Step.VERIFYING, Step.RESOLVING, Step.CONNECTING, Step.OPENING, Step.SENT,
         Step.ANSWERED)


@pytest.mark.parametrize("state", OPEN_STATES)
def test_any_open_connection_closes_and_is_lost(state: State) -> None:
    play, _ = at(state)
    assert play.tick(1.0) == ()  # nothing is late yet
    play.close()
    closing = play.machine.state
    play.lost()
    assert (closing, play.machine.state) == (State.CLOSING, State.CLOSED)


@pytest.mark.parametrize("state", OPEN_STATES)
def test_a_client_can_leave_in_any_state(state: State) -> None:
    play, ex = at(state)
    active, queued = play.lost()
    assert active is (ex if state is State.EXCHANGE else None) and not queued
    assert (play.machine.state, play.machine.active) == (State.CLOSED, None)


def test_a_tunnel_ends_when_either_side_closes() -> None:
    play, _ = at(State.TUNNEL)
    play.tunnel_closed()
    assert play.machine.state is State.CLOSED


@pytest.mark.parametrize("step", STEPS)
def test_any_exchange_is_dropped_when_the_connection_is_lost(step: Step) -> None:
    play, ex = at(step)
    assert play.tick(1.0) == ()
    play.lost()
    assert play.machine.step is Step.NONE and ex is not None


@pytest.mark.parametrize("step", [Step.RESOLVING, Step.CONNECTING, Step.OPENING, Step.SENT])
def test_the_response_clock_answers_504_at_any_step_after_admission(step: Step) -> None:
    play, ex = at(step)
    assert ex is not None
    late = ProxyError(504, "response timed out", "http_response_timeout")
    assert play.refused(ex, late) == (Reply(late, keep=True, ends=True),)
    assert play.ended(ex) == ((Reparse(ex),) if step is Step.OPENING else ())


def test_a_head_without_a_first_byte_event_starts_too_and_a_half_head_drains() -> None:
    play = Play()
    verified_once(play)
    play.machine.state = State.IDLE
    ex = exchange()
    assert play.head_parsed(ex) == (ADMIT, TAKE_POOLED)
    half, _ = at(State.HEAD)
    assert half.drain() == (CLOSE,)


# ---- the tables ---------------------------------------------------------------------------------


def _playbooks() -> list[Callable[[], None]]:
    return [f for name, f in globals().items()
            if name.startswith("test_") and name != "test_every_transition_is_in_the_tables"]


S = TypeVar("S", State, Step)


def _walk(table: dict[tuple[S, str], frozenset[S]], seen: set[tuple[S, str, S]]) -> None:
    """Every move seen is one the table allows (unlisted: the state stays); every entry of
    the table was walked."""
    for before, event, after in seen:
        assert after in table.get((before, event), frozenset({before})), (before, event, after)
    walked = {(before, event) for before, event, _ in seen}
    assert not set(table) - walked, sorted(set(table) - walked)


def test_every_transition_is_in_the_tables() -> None:
    PLAYS.clear()
    for name, playbook in list(globals().items()):
        if name.startswith("test_") and name != "test_every_transition_is_in_the_tables":
            marks = getattr(playbook, "pytestmark", [])
            if marks:  # parametrized: every case
                (mark,) = marks
                for value in mark.args[1]:
                    playbook(value)
            else:
                playbook()
    moves = [move for play in PLAYS for move in play.moves]
    _walk(CONNECTION, {(before, event, after) for event, before, after, _, _ in moves})
    _walk(ADMISSION, {(before, event, after) for event, _, _, before, after in moves})


@pytest.fixture(autouse=True)
def _fresh_plays() -> None:
    PLAYS.clear()
