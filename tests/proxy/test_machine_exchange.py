"""Playbooks for one exchange's rules in the connection machine (proxy/core/machine.py):
its upstream lost under it (retry, 502, a cut or a complete body) and its response clock
(when the 504 gets a loop timer, and the 100-continue clock). Pure: no sockets."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core.machine import (
    Lost,
    Phase,
    continue_clock_starts,
    timer_at_start,
    timer_due,
    upstream_lost,
)


@pytest.mark.parametrize(
    ("phase", "until_close", "replayable", "interim", "retried", "outcome"),
    [
        (Phase.WAITING, False, True, False, False, Lost.RETRY),  # a stale pooled connection
        (Phase.WAITING, False, True, False, True, Lost.BAD_GATEWAY),  # only once
        (Phase.WAITING, False, False, False, False, Lost.BAD_GATEWAY),  # a fresh one, or big
        (Phase.WAITING, False, True, True, False, Lost.BAD_GATEWAY),  # a 100 went out
        (Phase.BODY, True, True, False, False, Lost.COMPLETE),  # close-delimited: done
        (Phase.BODY, False, True, False, False, Lost.ABORT),  # truncated
        (Phase.ADMITTING, False, False, False, False, Lost.IGNORE),
        (Phase.DONE, False, False, False, False, Lost.IGNORE),
    ],
)
def test_an_upstream_lost_under_an_exchange(
    phase: Phase, until_close: bool, replayable: bool, interim: bool, retried: bool,
    outcome: Lost,
) -> None:
    assert upstream_lost(phase, until_close, replayable, interim, retried) is outcome


def test_a_stale_pooled_connection_then_a_dead_fresh_one() -> None:
    """The first loss resends the request; the second, on the new connection, is a 502."""
    retried = False
    outcomes = []
    for _ in range(2):
        outcome = upstream_lost(Phase.WAITING, False, True, False, retried)
        outcomes.append(outcome)
        retried = retried or outcome is Lost.RETRY
    assert outcomes == [Lost.RETRY, Lost.BAD_GATEWAY]


def test_a_near_deadline_gets_its_timer_at_once_a_far_one_from_a_later_sweep() -> None:
    sweep = 1.0
    assert timer_at_start(1.5, sweep)  # the next sweep could see it too late
    assert not timer_at_start(30.0, sweep)
    # A 30 s deadline, started at 0, followed by the sweeps once a second: the timer is
    # armed by the first sweep within two intervals of it, so the 504 is at 30 s sharp.
    armed_at = next(t for t in range(1, 31) if timer_due(30.0, float(t), sweep))
    assert armed_at == 29


@pytest.mark.parametrize(
    ("expects", "complete", "received", "interim", "timeout", "starts"),
    [
        (True, False, 0, False, 30.0, True),  # waiting for the 100: the origin's silence
        (False, False, 0, False, 30.0, False),  # a body is coming: the body rules watch it
        (True, True, 0, False, 30.0, False),  # no body: the clock starts as for any request
        (True, False, 10, False, 30.0, False),  # the client sent body bytes anyway
        (True, False, 0, True, 30.0, False),  # a 100 already passed on
        (True, False, 0, False, 0.0, False),  # no timeout
    ],
)
def test_the_100_continue_clock(
    expects: bool, complete: bool, received: int, interim: bool, timeout: float, starts: bool
) -> None:
    assert continue_clock_starts(expects, complete, received, interim, timeout) is starts
