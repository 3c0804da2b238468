"""The client-IP ban in Redis: failure windows and bans shared by every API and proxy node.

    <p>bans                hash ip -> banned until (epoch seconds)
    <p>failures:<ip>       sorted set of failure times within the window (expires with it)

The same rule as `Store.record_auth_failure` (domain.bans.BanPolicy), decided atomically
in one script so concurrent failures on many nodes count exactly.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from redis import Redis

from meshproxy.domain.bans import BanPolicy

# KEYS: failures zset, bans hash. ARGV: ip, now, window, max failures, ban seconds, member.
FAILURE_SCRIPT = """
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
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


class RedisBans:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._bans = f"{prefix}bans"
        self._failures = f"{prefix}failures:"
        self._failure = redis.register_script(FAILURE_SCRIPT)

    def record_failure(self, ip: str, now: float, policy: BanPolicy) -> float | None:
        """Count a failure from `ip`; returns the ban's end if this one starts a ban."""
        until = self._failure(
            keys=[self._failures + ip, self._bans],
            args=[
                ip,
                repr(now),
                repr(policy.window_seconds),
                policy.max_failures,
                repr(policy.ban_seconds),
                f"{now!r}:{uuid.uuid4().hex}",
            ],
        )
        return None if until is None else float(until)

    def record_success(self, ip: str) -> None:
        self._redis.delete(self._failures + ip)

    def ban_until(self, ip: str, now: float) -> float | None:
        value = self._redis.hget(self._bans, ip)
        if value is None:
            return None
        until = float(cast(Any, value))
        return until if until > now else None

    def active(self, now: float) -> dict[str, float]:
        """Bans in force; expired ones are removed on the way."""
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

    def unban(self, ip: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(self._bans, ip)
        pipe.delete(self._failures + ip)
        removed, _ = pipe.execute()
        return bool(removed)
