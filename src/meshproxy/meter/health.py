"""Whether a backend (the store, Redis) answered last time, logged loudly when it stops.

Pure state plus logging: the first failure logs an error, a still-failing backend logs
again every `repeat` seconds, and recovery logs how long it was down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("meshproxy.backends")


class BackendHealth:
    def __init__(
        self, name: str, *, repeat: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.down_since: float | None = None
        self.errors = 0  # failures since start (a counter for metrics)
        self.last_error = ""
        self._repeat = repeat
        self._clock = clock
        self._last_logged = 0.0

    @property
    def up(self) -> bool:
        return self.down_since is None

    def ok(self) -> None:
        if self.down_since is not None:
            log.warning(
                "%s is reachable again after %.1f s", self.name, self._clock() - self.down_since
            )
            self.down_since = None

    def failed(self, error: BaseException, doing: str) -> None:
        now = self._clock()
        self.errors += 1
        self.last_error = f"{doing}: {error}"
        if self.down_since is None:
            self.down_since = now
        elif now - self._last_logged < self._repeat:
            return
        self._last_logged = now
        log.error(
            "%s UNREACHABLE for %.1f s (%s); serving from memory, usage kept for retry",
            self.name,
            now - self.down_since,
            self.last_error,
        )

    def describe(self) -> dict[str, object]:
        down = None if self.down_since is None else round(self._clock() - self.down_since, 1)
        return {
            "up": self.up,
            "down_seconds": down,
            "errors": self.errors,
            "last_error": self.last_error,
        }
