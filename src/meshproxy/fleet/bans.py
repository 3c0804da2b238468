"""The client-IP ban in Redis: failure windows and bans shared by every API and proxy node.

    <p>bans                hash ip -> banned until (epoch seconds)
    <p>failures:<ip>       sorted set of failure times within the window (expires with it)
    <p>reset:<ip>          time of the address's last success (expires with the window):
                           a failure from before it, reported late, does not count

The same rule as the store's tables (store/bans.py, domain.bans.BanPolicy), decided
atomically in one script so concurrent failures on many nodes count exactly. It is the
store's `SharedBans`: a call Redis cannot answer raises `SharedUnavailable` (and is logged
in the link's health), and the tables decide meanwhile.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

from meshproxy.domain.bans import BanPolicy
from meshproxy.fleet.link import RedisLink

# KEYS: failures zset, bans hash, reset. ARGV: ip, at, window, max failures, ban seconds,
# member.
FAILURE_SCRIPT = """
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local reset = tonumber(redis.call('GET', KEYS[3]) or '-1')
if now < reset then
  return false
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  return false
end
redis.call('DEL', KEYS[1])
local ends = now + tonumber(ARGV[5])
local previous = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if previous > ends then ends = previous end
local text = string.format('%.6f', ends)
redis.call('HSET', KEYS[2], ARGV[1], text)
return text
"""


# A success's mark outlives any late report of the failures before it (a proxy reports
# within a second; one that reports later still has its failures counted, not lost).
RESET_SECONDS = 3600.0

# KEYS: failures zset, reset. ARGV: at, lifetime of the mark.
SUCCESS_SCRIPT = """
local at = tonumber(ARGV[1])
local previous = tonumber(redis.call('GET', KEYS[2]) or '-1')
if at > previous then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', math.ceil(tonumber(ARGV[2]) * 1000))
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at)
return 1
"""


class RedisBans:
    def __init__(self, link: RedisLink, prefix: str) -> None:
        self._link = link
        self._redis = redis = link.redis
        self._bans = f"{prefix}bans"
        self._failures = f"{prefix}failures:"
        self._resets = f"{prefix}reset:"
        self._failure = redis.register_script(FAILURE_SCRIPT)
        self._success = redis.register_script(SUCCESS_SCRIPT)

    def record_failure(self, ip: str, now: float, policy: BanPolicy) -> float | None:
        """Count a failure from `ip` that happened at `now` (not if the address succeeded
        since); returns the ban's end if this one starts a ban."""
        until = self._link.call(
            "counting an authentication failure",
            lambda: self._failure(
                keys=[self._failures + ip, self._bans, self._resets + ip],
                args=[
                    ip,
                    repr(now),
                    repr(policy.window_seconds),
                    policy.max_failures,
                    repr(policy.ban_seconds),
                    f"{now!r}:{uuid.uuid4().hex}",
                ],
            ),
        )
        return None if until is None else float(until)

    def record_success(self, ip: str, at: float | None) -> None:
        """The failures until `at` stop counting, also those reported later (None: every
        failure counted so far)."""

        def reset() -> None:
            if at is None:
                self._redis.delete(self._failures + ip)
            else:
                keys = [self._failures + ip, self._resets + ip]
                self._success(keys=keys, args=[repr(at), repr(RESET_SECONDS)])

        self._link.call("resetting a failure count", reset)

    def ban_until(self, ip: str, now: float) -> float | None:
        value = self._link.call("reading a ban", lambda: self._redis.hget(self._bans, ip))
        if value is None:
            return None
        until = float(cast(Any, value))
        return until if until > now else None

    def active(self, now: float) -> dict[str, float]:
        """Bans in force; expired ones are removed on the way."""
        return self._link.call("reading bans", lambda: self._active(now))

    def _active(self, now: float) -> dict[str, float]:
        everything = cast(dict[Any, Any], self._redis.hgetall(self._bans))
        active, expired = {}, []
        for ip, value in everything.items():
            name = ip.decode() if isinstance(ip, bytes) else str(ip)
            until = float(value)
            if until > now:
                active[name] = until
            else:
                expired.append(name)
        if expired:
            self._redis.hdel(self._bans, *expired)
        return active

    def failure_counts(self, since: float) -> dict[str, int]:
        """Failures per client IP counted at `since` or later (`admin bans`)."""
        return self._link.call("reading failure counts", lambda: self._failure_counts(since))

    def _failure_counts(self, since: float) -> dict[str, int]:
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self._failures) + "*"
        found = {}
        for key in self._redis.scan_iter(match=pattern, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            count = int(cast(Any, self._redis.zcount(key, since, "+inf")))
            if count:
                found[name[len(self._failures) :]] = count
        return found

    def unban(self, ip: str) -> bool:
        """Lift the ban and the count; failures from before now, reported later, no longer
        count."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._bans, ip)
        pipe.delete(self._failures + ip)
        pipe.set(self._resets + ip, repr(time.time()), px=int(RESET_SECONDS * 1000))
        removed, _, _ = self._link.call("lifting a ban", pipe.execute)
        return bool(removed)
