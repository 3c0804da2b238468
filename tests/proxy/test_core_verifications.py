"""Verifications under way: the cap, sharing one answer, and places that free themselves."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from meshproxy.proxy.core.verifications import VerificationSlots
from support.polling import wait_until


def test_at_most_limit_distinct_keys_and_the_same_key_shares() -> None:
    slots = VerificationSlots(2)
    first, second = slots.take("a", 0.0), slots.take("b", 0.0)
    assert first is not None and second is not None
    assert slots.take("c", 0.0) is None  # full
    assert slots.take("a", 0.0) is first  # the same key shares the one under way
    assert len(slots) == 2
    assert slots.run(first, lambda: True) is True
    assert len(slots) == 1  # done: its place is free, and the key starts afresh
    again = slots.take("a", 0.0)
    assert again is not None and again is not first
    assert slots.take("c", 0.0) is None


def test_one_run_answers_everyone_who_took_it() -> None:
    slots = VerificationSlots(1)
    shared = slots.take("k", 0.0)
    assert shared is not None
    release, calls = threading.Event(), []

    def slow() -> bool:
        calls.append(1)
        assert release.wait(10)
        return True

    with ThreadPoolExecutor(6) as pool:
        answers = [pool.submit(slots.run, shared, slow) for _ in range(6)]
        wait_until(lambda: calls, 2, "no check started")  # one runs, the others wait
        assert calls == [1] and slots.take("other", 0.0) is None  # still under way
        release.set()
        assert [a.result(10) for a in answers] == [True] * 6
    assert calls == [1] and len(slots) == 0


def test_a_failing_run_answers_false_to_the_others_and_frees_its_place() -> None:
    slots = VerificationSlots(1)
    shared = slots.take("k", 0.0)
    assert shared is not None

    def broken() -> bool:
        raise RuntimeError("argon2 broke")

    with pytest.raises(RuntimeError):
        slots.run(shared, broken)
    assert slots.run(shared, lambda: True) is False  # the answer was given: no second run
    assert len(slots) == 0 and slots.take("other", 0.0) is not None


def test_a_place_taken_and_never_started_is_reclaimed_when_needed() -> None:
    slots = VerificationSlots(1, abandoned_after=60.0)
    abandoned = slots.take("gone", 100.0)
    assert abandoned is not None
    assert slots.take("new", 159.0) is None
    reclaimed = slots.take("new", 160.0)
    assert reclaimed is not None
    # A started verification keeps its place however long it runs.
    started = threading.Event()
    release = threading.Event()

    def slow() -> bool:
        started.set()
        return release.wait(10)

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(slots.run, reclaimed, slow)
        assert started.wait(10)
        assert slots.take("later", 10_000.0) is None
        release.set()
        assert running.result(10) is True
    # The abandoned one may still run later: it answers and frees nothing it no longer holds.
    assert slots.take("later", 10_000.0) is not None
    assert slots.run(abandoned, lambda: False) is False
    assert len(slots) == 1
