"""Playbooks for the connection machine's timeout rules (proxy/core/machine.py): events
under a made-up clock, then the sweep's verdict. No sockets, no loop: milliseconds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from meshproxy.proxy.core.machine import Clocks, Limits, Phase, Verdict, judge

LIMITS = Limits(
    header_timeout=30.0,
    idle_timeout=120.0,
    body_timeout=60.0,
    body_min_rate=500.0,
    upstream_timeout=30.0,
    send_timeout=60.0,
    tunnel_idle_timeout=900.0,
)


@dataclass
class FakeExchange:
    """The exchange as the rules read it."""

    phase: Phase = Phase.WAITING
    request_complete: bool = True
    continue_clock: bool = False
    body_started: float = 0.0
    body_received: int = 0
    timeout: float = 30.0
    last_seen: float = 0.0


def _verdicts(clocks: Clocks, times: list[float], **state: object) -> list[Verdict]:
    unsent = state.pop("unsent", 0)
    return [judge(clocks, t, LIMITS, unsent=unsent, **state) for t in times]  # type: ignore[arg-type]


def test_a_connection_that_never_sends_a_request_closes_at_the_header_timeout() -> None:
    clocks = Clocks(0.0)
    assert _verdicts(clocks, [1.0, 29.9, 30.1]) == [Verdict.NOTHING] * 2 + [Verdict.CLOSE]


def test_keep_alive_idle_closes_at_the_idle_timeout_counted_from_the_last_exchange() -> None:
    clocks = Clocks(0.0)
    clocks.head_begun(1.0)
    clocks.head_complete()
    clocks.idle_since = 5.0  # the exchange ended
    assert _verdicts(clocks, [100.0, 125.0, 125.1]) == [
        Verdict.NOTHING, Verdict.NOTHING, Verdict.CLOSE]


def test_a_head_that_stops_coming_gets_408() -> None:
    clocks = Clocks(0.0)
    clocks.head_begun(10.0)
    assert _verdicts(clocks, [39.9, 40.1]) == [Verdict.NOTHING, Verdict.REQUEST_TIMEOUT]


def test_a_request_body_that_stops_coming_is_aborted_and_a_trickle_gets_408() -> None:
    clocks = Clocks(0.0)
    clocks.head_begun(0.0)
    clocks.head_complete()
    upload = FakeExchange(request_complete=False, body_started=0.0, body_received=0)
    assert _verdicts(clocks, [29.0, 30.1], exchange=upload) == [
        Verdict.NOTHING, Verdict.ABORT]
    # A trickle: a byte now and then keeps the connection active, but the rate rule
    # (60 s + 1 s per 500 bytes) runs out.
    upload.body_received = 1000
    clocks.last_active = 61.0
    assert _verdicts(clocks, [61.5, 62.1], exchange=upload) == [
        Verdict.NOTHING, Verdict.REQUEST_TIMEOUT]


def test_the_body_rate_runs_on_the_clients_clock_only() -> None:
    """Time the proxy paused reading (an upstream not taking the body) is not the
    client's: the rate rule does not count it."""
    clocks = Clocks(0.0)
    clocks.head_complete()
    upload = FakeExchange(request_complete=False, timeout=0.0)
    clocks.reading_paused(10.0)
    clocks.reading_resumed(50.0)  # 40 s not read
    clocks.last_active = 90.0
    assert _verdicts(clocks, [95.0, 100.1], exchange=upload) == [
        Verdict.NOTHING, Verdict.REQUEST_TIMEOUT]


def test_an_upload_the_upstream_stops_taking_gets_504_at_the_exchange_timeout() -> None:
    clocks = Clocks(0.0)
    clocks.head_complete()
    upload = FakeExchange(request_complete=False, timeout=5.0)
    clocks.reading_paused(1.0)
    assert _verdicts(clocks, [5.9, 6.1], exchange=upload, reading_paused=True) == [
        Verdict.NOTHING, Verdict.RESPONSE_TIMEOUT]


def test_a_100_continue_wait_is_left_to_the_exchange_timer() -> None:
    clocks = Clocks(0.0)
    clocks.head_complete()
    waiting = FakeExchange(request_complete=False, continue_clock=True)
    assert _verdicts(clocks, [31.0, 100.0], exchange=waiting) == [Verdict.NOTHING] * 2


def test_a_response_body_that_stops_coming_is_aborted_only_while_it_is_read() -> None:
    clocks = Clocks(0.0)
    clocks.head_complete()
    download = FakeExchange(phase=Phase.BODY, last_seen=10.0)
    clocks.writing_paused = True  # the client has not drained: the upstream is paused
    assert _verdicts(clocks, [41.0, 300.0], exchange=download) == [Verdict.NOTHING] * 2
    clocks.writing_paused = False  # it drained; the driver restarts the origin's clock
    download.last_seen = 300.0
    assert _verdicts(clocks, [329.9, 330.1], exchange=download) == [
        Verdict.NOTHING, Verdict.ABORT]


@pytest.mark.parametrize("closing", [False, True], ids=["open", "closing"])
def test_a_client_that_takes_nothing_is_aborted_at_the_send_timeout(closing: bool) -> None:
    clocks = Clocks(0.0)
    clocks.head_complete()
    download = None if closing else FakeExchange(phase=Phase.BODY, last_seen=0.0)
    clocks.writing_paused = True
    sweeps = [judge(clocks, t, LIMITS, unsent=65536, closing=closing, exchange=download)
              for t in (1.0, 30.0, 61.0, 61.5)]
    assert sweeps == [Verdict.NOTHING] * 3 + [Verdict.ABORT]


def test_a_slow_reader_that_makes_progress_is_never_cut() -> None:
    clocks = Clocks(0.0)
    clocks.head_complete()
    download = FakeExchange(phase=Phase.BODY)
    clocks.writing_paused = True
    unsent = 65536
    for t in range(1, 600, 50):  # a few bytes taken between sweeps
        assert judge(clocks, float(t), LIMITS, unsent=unsent, exchange=download) is (
            Verdict.NOTHING)
        unsent -= 100


def test_an_idle_tunnel_is_aborted_at_the_tunnel_idle_timeout() -> None:
    clocks = Clocks(0.0)
    clocks.last_active = 100.0
    assert _verdicts(clocks, [999.0, 1000.1], tunnel=True) == [Verdict.NOTHING, Verdict.ABORT]


def test_a_closing_connection_waits_only_for_its_flush() -> None:
    """Flushing its last bytes, it is not idle-closed or timed out again."""
    clocks = Clocks(0.0)
    clocks.head_begun(0.0)
    assert _verdicts(clocks, [100.0], closing=True) == [Verdict.NOTHING]
