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
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run `work` as a task of this connection's own."""
        task = self._loop.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    def cancel(self) -> None:
        """Cancel every task still running, but the one calling (it is ending itself)."""
        if not self._running:
            return
        current = asyncio.current_task(self._loop)
        for task in list(self._running):
            if task is not current:
                task.cancel()

    def __len__(self) -> int:
        return len(self._running)
