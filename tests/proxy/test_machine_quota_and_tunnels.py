"""Playbooks for the quota-cut and tunnel rules (proxy/core/quota.py, core/machine.py):
an account near its limit, bytes moving, sweeps ticking under a made-up clock, and the
command each step gives. No sockets, no loop: milliseconds."""

from __future__ import annotations

from meshproxy.domain.limits import Limits as AccountLimits
from meshproxy.domain.units import GB
from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.machine import (
    Clocks,
    Verdict,
    handshake_late,
    judge,
    judge_tunnel,
)
from meshproxy.proxy.core.quota import allowed, read_size

from .test_core_directory import directory, record, view
from .test_machine_timeouts import LIMITS

SWEEP = 0.25  # quota_check_interval


def near_limit(left: int) -> AccountState:
    """An account with a 1 GB monthly limit and `left` bytes of it still to move."""
    d = directory(view(record(1, "alice", limits=AccountLimits(monthly_gb=1))))
    account = d.by_username["alice"]
    account.add_usage(GB - left)
    assert account.allowance() == left
    return account


def test_bytes_below_the_allowance_go_and_the_connection_goes_on() -> None:
    assert allowed(None, 10**9) is None  # no limit at all
    assert allowed(1000, 999) is None


def test_bytes_reaching_the_allowance_go_up_to_it_then_the_connection_is_cut() -> None:
    assert allowed(1000, 1000) == 1000  # the limit exactly: all of it, then the cut
    assert allowed(1000, 4096) == 1000  # past it: only the allowance, then the cut
    assert allowed(0, 10) == 0
    assert allowed(-50, 10) == 0  # another connection overshot it: nothing more


def test_a_connection_playbook_charges_until_the_cut() -> None:
    """Reads of 600 bytes for an account with 1500 left: two go whole, the third is
    trimmed to 300 and cuts; the charge that reaches the limit says so too."""
    account = near_limit(1500)
    sent: list[int] = []
    cut = False
    for _ in range(5):
        if cut:
            break
        size = allowed(account.allowance(), 600)
        nbytes = 600 if size is None else size
        cut = size is not None
        sent.append(nbytes)
        reached = account.charge(nbytes)
        assert reached is cut  # the charge-time rule and the send rule agree
    assert sent == [600, 600, 300] and cut
    assert account.allowance() == 0


def test_a_spliced_tunnel_reads_at_most_the_allowance_and_ends_at_the_limit() -> None:
    account = near_limit(100_000)
    reads = []
    while size := read_size(account.allowance(), 65536):
        reads.append(size)
        account.charge(size)
    assert reads == [65536, 100_000 - 65536]  # the cut comes within one read of the limit
    assert read_size(None, 65536) == 65536


def test_the_sweep_aborts_a_connection_whose_account_is_refused_within_one_interval() -> None:
    """Another node's usage brings the account over its limit at t=1.1 s: the next sweep
    (every 0.25 s) aborts the connection, an exchange or a tunnel alike."""
    for tunnel in (False, True):
        clocks = Clocks(0.0)
        refused_from = 1.1
        verdicts = []
        t = 0.0
        while t < 2.0:
            t = round(t + SWEEP, 2)
            clocks.last_active = t  # bytes keep moving: no idle rule applies
            verdict = judge(clocks, t, LIMITS, unsent=0, tunnel=tunnel,
                            refused=t >= refused_from)
            verdicts.append((t, verdict))
            if verdict is Verdict.ABORT:
                break
        assert verdicts[-1] == (1.25, Verdict.ABORT)
        assert all(v is Verdict.NOTHING for _, v in verdicts[:-1])
        assert verdicts[-1][0] - refused_from <= SWEEP


def test_a_refused_account_is_aborted_even_while_it_writes_or_closes() -> None:
    clocks = Clocks(0.0)
    assert judge(clocks, 1.0, LIMITS, unsent=5000, closing=True, refused=True) is Verdict.ABORT


def test_a_tunnel_is_cut_after_its_idle_timeout_counted_from_its_last_bytes() -> None:
    clocks = Clocks(0.0)
    clocks.last_active = 100.0  # bytes either way
    ticks = {t: judge(clocks, t, LIMITS, unsent=0, tunnel=True) for t in (999.0, 1000.1)}
    assert ticks == {999.0: Verdict.NOTHING, 1000.1: Verdict.ABORT}
    clocks.last_active = 1000.0  # bytes again just before: the clock starts over
    assert judge(clocks, 1000.1, LIMITS, unsent=0, tunnel=True) is Verdict.NOTHING


def test_a_tunnel_whose_client_takes_nothing_is_cut_at_the_send_timeout() -> None:
    clocks = Clocks(0.0)
    clocks.last_active = 0.0
    verdicts = [judge(clocks, t, LIMITS, unsent=65536, tunnel=True) for t in (1.0, 60.0, 61.5)]
    assert verdicts == [Verdict.NOTHING, Verdict.NOTHING, Verdict.ABORT]


def test_the_socks5_tunnel_rules_are_the_same() -> None:
    """SOCKS5's sweep asks judge_tunnel with its own last bytes (server/socks.py)."""
    assert judge_tunnel(950.0, 100.0, LIMITS) is Verdict.NOTHING
    assert judge_tunnel(1000.1, 100.0, LIMITS) is Verdict.ABORT
    assert judge_tunnel(101.0, 100.0, LIMITS, refused=True) is Verdict.ABORT
    assert not handshake_late(29.9, 0.0, LIMITS)
    assert handshake_late(30.1, 0.0, LIMITS)
