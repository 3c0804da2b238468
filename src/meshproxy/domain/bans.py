"""The authentication-failure ban: N failures from one client IP within a window ban that IP.

Pure state machine: callers pass the current time (seconds since the epoch), so the
rule is tested without sleeping. A success resets the count. A book shared across
threads is given a lock (`lock=threading.Lock()`): in one `meshproxy serve` process the
proxies (on the event loop) and the API and dashboard (in worker threads) share one book,
so a ban decided by either face holds on the other at once, and failures from both count
in the order they happened. The domain itself starts no threads and takes no lock of its
own.
"""

from __future__ import annotations

from collections import deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

MAX_TRACKED = 100_000  # client IPs with failures remembered (a scan prunes the stale ones)


@dataclass(frozen=True)
class BanPolicy:
    max_failures: int = 4
    window_seconds: float = 600.0
    ban_seconds: float = 10_800.0


@dataclass
class BanBook:
    policy: BanPolicy
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _banned_until: dict[str, float] = field(default_factory=dict)
    # Held while the book changes; a no-op unless the caller shares the book across threads.
    lock: AbstractContextManager[Any] = field(
        default_factory=nullcontext, repr=False, compare=False
    )

    def is_banned(self, ip: str, now: float) -> bool:
        # Without the lock (every request asks): one dict read; an expired ban is dropped
        # with pop, safe against another thread dropping it too.
        until = self._banned_until.get(ip)
        if until is None:
            return False
        if now >= until:
            self._banned_until.pop(ip, None)
            return False
        return True

    def banned_until(self, ip: str, now: float) -> float | None:
        until = self._banned_until.get(ip)
        return until if until is not None and self.is_banned(ip, now) else None

    @property
    def counting(self) -> bool:
        """Some address has failures counted (cheap: the fast path of every success)."""
        return bool(self._failures)

    def failing(self, ip: str) -> bool:
        return ip in self._failures

    def record_failure(self, ip: str, now: float) -> float | None:
        """Count one failure; returns the ban's end time if this failure starts a ban (the
        later of now + ban_seconds and a ban's already in force: a ban is never shortened,
        here, in the store or in Redis; tests/test_ban_window.py)."""
        with self.lock:
            if len(self._failures) >= MAX_TRACKED and ip not in self._failures:
                self._prune(now)
            window = self._failures.setdefault(ip, deque())
            window.append(now)
            while window and window[0] <= now - self.policy.window_seconds:
                window.popleft()
            if len(window) >= self.policy.max_failures:
                del self._failures[ip]
                until = max(now + self.policy.ban_seconds, self._banned_until.get(ip, 0.0))
                self._banned_until[ip] = until
                return until
            return None

    def record_success(self, ip: str) -> bool:
        """Reset the count; True if there was one."""
        with self.lock:
            return self._failures.pop(ip, None) is not None

    def ban(self, ip: str, until: float) -> None:
        """Adopt a ban decided elsewhere (another node, the store)."""
        with self.lock:
            self._banned_until[ip] = max(until, self._banned_until.get(ip, 0.0))

    def unban(self, ip: str) -> None:
        with self.lock:
            self._banned_until.pop(ip, None)
            self._failures.pop(ip, None)

    def active_count(self, now: float) -> int:
        return sum(1 for until in list(self._banned_until.values()) if until > now)

    def prune(self, now: float) -> None:
        """Forget expired bans and stale failure windows (bounded memory under a scan)."""
        with self.lock:
            self._prune(now)

    def _prune(self, now: float) -> None:
        for ip in [ip for ip, until in self._banned_until.items() if until <= now]:
            del self._banned_until[ip]
        horizon = now - self.policy.window_seconds
        for ip in [ip for ip, w in self._failures.items() if not w or w[-1] <= horizon]:
            del self._failures[ip]
