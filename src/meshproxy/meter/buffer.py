"""What a meter counts between two flushes: bytes and request statistics per account, the
batch being written, and its rollback. Pure bookkeeping, on the per-request path (the
meters, local.py and shared.py, hand its `add` and `count_request` to the data plane)."""

from __future__ import annotations

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import BYTES, HOST, MAX_HOSTS, OTHER_HOSTS, REQUESTS, StatDelta
from meshproxy.domain.usage import bytes_per_account

Key = tuple[int, int | None]
StatKey = tuple[int, str]


class UsageBuffer:
    """Pure bookkeeping: counted bytes and request statistics (domain/stats.py), the batch
    being written, and rollback on failure. Both ride the same batch, so they are written
    (and folded) together, exactly as often. Plain dicts and `get`, not defaultdicts: this
    runs a few times a request, and compiled code has fast paths for exact dicts only."""

    def __init__(self) -> None:
        self._counts: dict[Key, int] = {}
        self._in_flight: dict[Key, int] = {}
        self._stats: dict[StatKey, int] = {}
        self._stats_in_flight: dict[StatKey, int] = {}
        # Hosts counted per account since the last take: at most MAX_HOSTS a flush, the
        # rest go to OTHER_HOSTS (a client of many hosts cannot swell a flush).
        self._hosts: dict[int, int] = {}

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        counts, key = self._counts, (account_id, parent_id)
        counts[key] = counts.get(key, 0) + nbytes

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        """One request of the account ended: its outcome counter (domain/stats.py), and
        its bytes, to `host` too."""
        stats = self._stats
        key = (account_id, REQUESTS)
        stats[key] = stats.get(key, 0) + 1
        key = (account_id, outcome)
        stats[key] = stats.get(key, 0) + 1
        if nbytes > 0:
            key = (account_id, BYTES)
            stats[key] = stats.get(key, 0) + nbytes
            if host:
                key = (account_id, HOST + host)
                counted = stats.get(key)
                if counted is None:
                    hosts = self._hosts.get(account_id, 0)
                    if hosts >= MAX_HOSTS:
                        key = (account_id, OTHER_HOSTS)
                        counted = stats.get(key)
                    else:
                        self._hosts[account_id] = hosts + 1
                stats[key] = (counted or 0) + nbytes

    def take(self) -> list[UsageDelta]:
        """Start a write: the counted bytes (and statistics, `taken_stats`) move to the
        in-flight batch."""
        if self._in_flight or self._stats_in_flight:
            raise RuntimeError("a flush is already in flight")
        batch, self._counts = self._counts, {}
        self._in_flight = {k: v for k, v in batch.items() if v}
        self._stats_in_flight, self._stats = self._stats, {}
        self._hosts = {}
        return [UsageDelta(a, p, n) for (a, p), n in self._in_flight.items()]

    def taken_stats(self) -> list[StatDelta]:
        """The statistics of the batch `take` started."""
        return [StatDelta(a, name, n) for (a, name), n in self._stats_in_flight.items()]

    def committed(self) -> None:
        self._in_flight = {}
        self._stats_in_flight = {}

    def failed(self) -> None:
        counts, stats = self._counts, self._stats
        for key, nbytes in self._in_flight.items():
            counts[key] = counts.get(key, 0) + nbytes
        for stat, value in self._stats_in_flight.items():
            stats[stat] = stats.get(stat, 0) + value
        self._in_flight = {}
        self._stats_in_flight = {}

    def pending_totals(self) -> dict[int, int]:
        return bytes_per_account(
            UsageDelta(account_id, parent_id, nbytes)
            for source in (self._counts, self._in_flight)
            for (account_id, parent_id), nbytes in source.items()
        )

    def __bool__(self) -> bool:
        return (
            any(self._counts.values())
            or bool(self._in_flight)
            or bool(self._stats)
            or bool(self._stats_in_flight)
        )
