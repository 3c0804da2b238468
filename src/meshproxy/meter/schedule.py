"""A meter's periodic flush, and the last flush at stop retried with backoff."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class FlushSchedule:
    def __init__(self, flush: Callable[[], Awaitable[None]], interval: float) -> None:
        self._flush = flush
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            with contextlib.suppress(Exception):  # failures are logged by the meter
                await self._flush()

    async def stop(self, attempts: int = 5) -> bool:
        """Stop the schedule and flush once more; False if every attempt failed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for attempt in range(attempts):
            try:
                await self._flush()
                return True
            except Exception:
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        return False
