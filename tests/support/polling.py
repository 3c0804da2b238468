"""Waiting for something that happens in another thread or process: poll, never a fixed
sleep. One loop for the whole suite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def eventually(check: Callable[[], object], within: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `check` until it is true; False once `within` seconds have passed (for
    `assert eventually(...)` and for waits that decide what to do next)."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return bool(check())
        time.sleep(interval)
    return True


Message = str | Callable[[], object]  # a callable: the state to show, read at the failure


def _failure(message: Message, within: float) -> object:
    return (message() if callable(message) else message) or f"not within {within} s"


def wait_until(
    check: Callable[[], object],
    within: float = 10.0,
    message: Message = "",
    interval: float = 0.02,
) -> float:
    """Poll `check` until it is true and return the seconds that took; fail the test with
    `message` after `within` seconds."""
    started = time.monotonic()
    assert eventually(check, within, interval), _failure(message, within)
    return time.monotonic() - started


async def eventually_async(
    check: Callable[[], object], within: float = 10.0, interval: float = 0.02
) -> bool:
    """`eventually` inside a coroutine: the loop runs while it waits."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return bool(check())
        await asyncio.sleep(interval)
    return True


async def wait_until_async(
    check: Callable[[], object],
    within: float = 10.0,
    message: Message = "",
    interval: float = 0.02,
) -> float:
    """`wait_until` inside a coroutine."""
    started = time.monotonic()
    assert await eventually_async(check, within, interval), _failure(message, within)
    return time.monotonic() - started
