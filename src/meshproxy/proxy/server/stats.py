"""A proxy node's figures at one moment, for its metrics (ops/metrics.py) and status."""

from __future__ import annotations

from dataclasses import dataclass

from meshproxy.proxy.core.health import EgressState


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """One proxy listener's: requests decided (not the sweep's re-checks of open
    connections), bytes metered both ways, client connections open."""

    requests: int
    nbytes: int
    open_connections: int


@dataclass(frozen=True, slots=True)
class NodeStats:
    proxies: dict[str, ProxyStats]
    egress: dict[str, dict[str, EgressState]]  # each proxy's upstream egresses, by name
    auth_failures: int
    verifications: int  # argon2 checks of new credentials under way or queued
    verifications_refused: int  # requests refused 503: too many checks under way
    bans_active: int
    accounts_loaded: int
    flush_lag: float  # seconds since usage was last flushed (0: never yet)
    unflushed_bytes: int  # counted here, not flushed yet (parents' figures)
    unfolded_flushes: int | None  # flushes sent to Redis no fold confirmed (None: no Redis)
    access_log_dropped: int | None  # None: no access log
