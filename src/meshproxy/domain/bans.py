"""The authentication-failure ban: N failures from one client IP within a window ban that IP.

Pure state machine: callers pass the current time (seconds since the epoch), so the
rule is tested without sleeping. A success resets the count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


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

    def is_banned(self, ip: str, now: float) -> bool:
        until = self._banned_until.get(ip)
        if until is None:
            return False
        if now >= until:
            del self._banned_until[ip]
            return False
        return True

    def banned_until(self, ip: str, now: float) -> float | None:
        return self._banned_until[ip] if self.is_banned(ip, now) else None

    def record_failure(self, ip: str, now: float) -> float | None:
        """Count one failure; returns the ban's end time if this failure starts a ban."""
        window = self._failures.setdefault(ip, deque())
        window.append(now)
        while window and window[0] <= now - self.policy.window_seconds:
            window.popleft()
        if len(window) >= self.policy.max_failures:
            del self._failures[ip]
            until = now + self.policy.ban_seconds
            self._banned_until[ip] = until
            return until
        return None

    def record_success(self, ip: str) -> None:
        self._failures.pop(ip, None)

    def ban(self, ip: str, until: float) -> None:
        """Adopt a ban decided elsewhere (another node, the store)."""
        self._banned_until[ip] = max(until, self._banned_until.get(ip, 0.0))

    def unban(self, ip: str) -> None:
        self._banned_until.pop(ip, None)
        self._failures.pop(ip, None)

    def active_count(self, now: float) -> int:
        return sum(1 for until in self._banned_until.values() if until > now)

    def prune(self, now: float) -> None:
        """Forget expired bans and stale failure windows (bounded memory under a scan)."""
        for ip in [ip for ip, until in self._banned_until.items() if until <= now]:
            del self._banned_until[ip]
        horizon = now - self.policy.window_seconds
        for ip in [ip for ip, w in self._failures.items() if not w or w[-1] <= horizon]:
            del self._failures[ip]
