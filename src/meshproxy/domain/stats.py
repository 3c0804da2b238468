"""Request statistics per account and day: what the proxy counts when a request (or a
tunnel, or a SOCKS5 connection) ends, and the one way it is named everywhere.

Each figure is a named counter of an account on a day (`StatDelta`): `requests`, `bytes`
(both directions, as charged), one outcome counter per request (`OUTCOMES`), and bytes per
destination host (`host:<name>`). Counters are summed in memory by the meter and ride its
flushes (the store's rows, or the Redis day hashes), so they are folded exactly when, and
as often as, the usage bytes of the same flush: once. A request's figures count for the
account that made it only (not for its parent, unlike usage bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

REQUESTS = "requests"
BYTES = "bytes"
HOST = "host:"  # + the destination host: bytes to and from it
OTHER_HOSTS = "hosts_other"  # bytes of the hosts beyond MAX_HOSTS on a day

# One per request, by who answered and the status class.
PROXY_4XX = "proxy_4xx"  # the proxy refused it: 400, 402, 403, 407, 408, 509...
PROXY_5XX = "proxy_5xx"  # the proxy could not serve it: 502, 503, 504
ORIGIN_2XX = "origin_2xx"  # the origin answered (1xx finals count as 2xx)
ORIGIN_3XX = "origin_3xx"
ORIGIN_4XX = "origin_4xx"
ORIGIN_5XX = "origin_5xx"
TUNNELS = "tunnels"  # a CONNECT or SOCKS5 tunnel opened
ABORTED = "aborted"  # the client left (or the connection broke) before any status
OUTCOMES = (
    PROXY_4XX,
    PROXY_5XX,
    ORIGIN_2XX,
    ORIGIN_3XX,
    ORIGIN_4XX,
    ORIGIN_5XX,
    TUNNELS,
    ABORTED,
)
COUNTERS = (REQUESTS, BYTES, *OUTCOMES)

MAX_HOSTS = 100  # destination hosts kept per account and day (by bytes; the rest summed)
MAX_HOST_LENGTH = 253
MAX_NAME_LENGTH = len(HOST) + MAX_HOST_LENGTH

_ORIGIN = {1: ORIGIN_2XX, 2: ORIGIN_2XX, 3: ORIGIN_3XX, 4: ORIGIN_4XX, 5: ORIGIN_5XX}


def outcome(status: int, *, by_proxy: bool, tunnel: bool = False) -> str:
    """The outcome counter of a request that ended with `status` sent to the client (0:
    none); `by_proxy`: the proxy answered itself; `tunnel`: a tunnel opened."""
    if tunnel:
        return TUNNELS
    if status <= 0:
        return ABORTED
    if by_proxy:
        return PROXY_5XX if status >= 500 else PROXY_4XX
    return _ORIGIN.get(status // 100, ORIGIN_5XX)


@dataclass(frozen=True)
class StatDelta:
    """`value` to add to counter `name` of an account (on the day of its batch)."""

    account_id: int
    name: str
    value: int


@dataclass(frozen=True)
class DayStats:
    """One account's figures of one day."""

    day: str  # ISO date
    counters: Mapping[str, int]  # every name of COUNTERS (0 when none)
    hosts: tuple[tuple[str, int], ...]  # (host, bytes), most bytes first; "(other)" last

    def get(self, name: str) -> int:
        return self.counters.get(name, 0)


def day_stats(day: str, rows: Iterable[tuple[str, int]]) -> DayStats:
    """A day's figures from its stored (name, value) rows."""
    counters = dict.fromkeys(COUNTERS, 0)
    hosts: list[tuple[str, int]] = []
    other = 0
    for name, value in rows:
        if name.startswith(HOST):
            hosts.append((name[len(HOST) :], value))
        elif name == OTHER_HOSTS:
            other += value
        else:
            counters[name] = counters.get(name, 0) + value
    hosts.sort(key=lambda item: (-item[1], item[0]))
    if other:
        hosts.append(("(other)", other))
    return DayStats(day, counters, tuple(hosts))


def trim_hosts(hosts: Mapping[str, int], keep: int = MAX_HOSTS) -> tuple[set[str], int]:
    """The host counters beyond the `keep` with most bytes (ties: by name), and their bytes
    (added to OTHER_HOSTS instead)."""
    if len(hosts) <= keep:
        return set(), 0
    ranked = sorted(hosts.items(), key=lambda item: (-item[1], item[0]))
    dropped = ranked[keep:]
    return {name for name, _ in dropped}, sum(value for _, value in dropped)
