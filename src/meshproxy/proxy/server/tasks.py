"""The tasks one connection starts (resolving, connecting, opening a relay): it keeps them
until they are done and cancels them when it goes, so none outlives its client (no
fire-and-forget `create_task`: a task nobody holds may be collected while it runs, and
would go on connecting for a client that left)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine


class Tasks:
    __slots__ = ("_loop", "_running")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # Made at the first task (an empty set is 216 bytes, and most connections only
        # ever take pooled upstreams).
        self._running: set[asyncio.Task[None]] | None = None

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run `work` as a task of this connection's own."""
        task = self._loop.create_task(work)
        running = self._running
        if running is None:
            running = self._running = set()
        running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        running = self._running
        if running is not None:
            running.discard(task)
            if not running:  # an idle tunnel keeps no empty set
                self._running = None

    def cancel(self) -> None:
        """Cancel every task still running, but the one calling (it is ending itself)."""
        if not self._running:
            return
        current = asyncio.current_task(self._loop)
        for task in list(self._running):
            if task is not current:
                task.cancel()

    def __len__(self) -> int:
        return len(self._running) if self._running is not None else 0
