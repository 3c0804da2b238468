"""Numbers as people read them on the dashboard: decimal byte units, usage against limits."""

from __future__ import annotations

from meshproxy.domain.units import GB

_UNITS = ((GB * 1000, "TB"), (GB, "GB"), (10**6, "MB"), (10**3, "kB"))


def human_bytes(nbytes: int) -> str:
    """`1.23 GB`, `456 MB`, `0 B`: three significant digits, decimal units (1 GB = 10^9 B)."""
    for size, unit in _UNITS:
        if abs(nbytes) >= size:
            value = nbytes / size
            text = f"{value:.3g}" if value < 1000 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{nbytes} B"


def limit_text(limit_gb: int) -> str:
    return "no limit" if limit_gb == 0 else f"{limit_gb:,} GB"


def used_percent(nbytes: int, limit_gb: int) -> float | None:
    """How much of a limit is used, 0-100 (capped); None when there is no limit."""
    if limit_gb <= 0:
        return None
    return min(100.0, 100.0 * nbytes / (limit_gb * GB))
