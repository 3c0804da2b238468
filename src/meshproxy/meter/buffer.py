"""What a meter counts between two flushes: bytes and request statistics per account, the
batch being written, and its rollback. Pure bookkeeping, on the per-request path (the
meters, local.py and shared.py, hand its `add` and `count_request` to the data plane)."""

from __future__ import annotations

from collections import defaultdict

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.stats import BYTES, HOST, MAX_HOSTS, OTHER_HOSTS, REQUESTS, StatDelta
from meshproxy.domain.usage import bytes_per_account

Key = tuple[int, int | None]
StatKey = tuple[int, str]


class UsageBuffer:
    """Pure bookkeeping: counted bytes and request statistics (domain/stats.py), the batch
    being written, and rollback on failure. Both ride the same batch, so they are written
    (and folded) together, exactly as often."""

    def __init__(self) -> None:
        self._counts: defaultdict[Key, int] = defaultdict(int)
        self._in_flight: dict[Key, int] = {}
        self._stats: defaultdict[StatKey, int] = defaultdict(int)
        self._stats_in_flight: dict[StatKey, int] = {}
        # Hosts counted per account since the last take: at most MAX_HOSTS a flush, the
        # rest go to OTHER_HOSTS (a client of many hosts cannot swell a flush).
        self._hosts: defaultdict[int, int] = defaultdict(int)

    def add(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        self._counts[(account_id, parent_id)] += nbytes

    def count_request(self, account_id: int, outcome: str, host: str, nbytes: int) -> None:
        """One request of the account ended: its outcome counter (domain/stats.py), and
        its bytes, to `host` too."""
        stats = self._stats
        stats[(account_id, REQUESTS)] += 1
        stats[(account_id, outcome)] += 1
        if nbytes > 0:
            stats[(account_id, BYTES)] += nbytes
            if host:
                key = (account_id, HOST + host)
                if key not in stats:
                    if self._hosts[account_id] >= MAX_HOSTS:
                        key = (account_id, OTHER_HOSTS)
                    else:
                        self._hosts[account_id] += 1
                stats[key] += nbytes

    def take(self) -> list[UsageDelta]:
        """Start a write: the counted bytes (and statistics, `taken_stats`) move to the
        in-flight batch."""
        if self._in_flight or self._stats_in_flight:
            raise RuntimeError("a flush is already in flight")
        batch, self._counts = self._counts, defaultdict(int)
        self._in_flight = {k: v for k, v in batch.items() if v}
        self._stats_in_flight, self._stats = dict(self._stats), defaultdict(int)
        self._hosts = defaultdict(int)
        return [UsageDelta(a, p, n) for (a, p), n in self._in_flight.items()]

    def taken_stats(self) -> list[StatDelta]:
        """The statistics of the batch `take` started."""
        return [StatDelta(a, name, n) for (a, name), n in self._stats_in_flight.items()]

    def committed(self) -> None:
        self._in_flight = {}
        self._stats_in_flight = {}

    def failed(self) -> None:
        for key, nbytes in self._in_flight.items():
            self._counts[key] += nbytes
        for stat, value in self._stats_in_flight.items():
            self._stats[stat] += value
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
