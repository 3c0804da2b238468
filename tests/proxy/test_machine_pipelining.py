"""Playbooks for the connection machine's keep-alive and pipelining decisions
(proxy/core/machine.py): what a connection does when an exchange ends, and whether it
survives a refusal of the proxy's own. Pure: no sockets."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core.machine import Next, after_exchange, keeps_after_refusal


@pytest.mark.parametrize(
    ("keep", "draining", "closed", "eof", "queued", "step"),
    [
        (True, False, False, False, False, Next.IDLE),  # keep-alive, nothing pipelined
        (True, False, False, False, True, Next.NEXT),  # the next pipelined request starts
        (False, False, False, False, True, Next.CLOSE),  # a decided close: the queue is not run
        (True, True, False, False, True, Next.CLOSE),  # the node drains
        (True, False, True, False, False, Next.CLOSE),  # already closed (a refusal closed it)
        (True, False, False, True, True, Next.CLOSE),  # the client half-closed
    ],
)
def test_what_follows_an_exchange(
    keep: bool, draining: bool, closed: bool, eof: bool, queued: bool, step: Next
) -> None:
    assert after_exchange(keep, draining, closed, eof, queued) is step


def test_three_pipelined_requests_run_in_order_until_one_closes() -> None:
    """Requests 1-3 arrive in one read: 1 and 2 keep the connection, 3 says close, so a 4th
    queued behind it never starts."""
    queue = ["2", "3", "4"]
    ran = ["1"]
    keeps = {"1": True, "2": True, "3": False}
    while True:
        step = after_exchange(keeps[ran[-1]], False, False, False, bool(queue))
        if step is not Next.NEXT:
            break
        ran.append(queue.pop(0))
    assert ran == ["1", "2", "3"] and step is Next.CLOSE and queue == ["4"]


@pytest.mark.parametrize(
    ("complete", "keep_alive", "version", "closes", "draining", "keeps"),
    [
        (True, True, "1.1", False, False, True),  # a 407 to a bodiless request: retry on it
        (False, True, "1.1", False, False, False),  # the body is unread: close
        (True, False, "1.1", False, False, False),  # Connection: close
        (True, True, "1.0", False, False, False),  # HTTP/1.0
        (True, True, "1.1", True, False, False),  # framing errors close (smuggling)
        (True, True, "1.1", False, True, False),  # the node drains
    ],
)
def test_whether_a_refusal_keeps_the_connection(
    complete: bool, keep_alive: bool, version: str, closes: bool, draining: bool, keeps: bool
) -> None:
    assert keeps_after_refusal(complete, keep_alive, version, closes, draining) is keeps
