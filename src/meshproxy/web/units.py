"""Numbers as people read them on the dashboard: decimal byte units, usage against limits."""

from __future__ import annotations

from meshproxy.domain.units import GB, bytes_to_gb, gb_text

_UNITS = ((GB * 1000, "TB"), (GB, "GB"), (10**6, "MB"), (10**3, "kB"))
# The smallest value that shows as 1.00 of a unit at three significant digits.
_SHOWS_AS_ONE = 0.9995


def human_bytes(nbytes: int) -> str:
    """`1.23 GB`, `45.6 MB`, `1.5 kB`, `0 B`: up to three significant digits in fixed
    notation (never `1e+03 kB`), decimal units (1 GB = 10^9 B); 999,600 B is `1 MB`."""
    for size, unit in _UNITS:
        value = nbytes / size
        if abs(value) >= _SHOWS_AS_ONE:
            shown = abs(float(f"{value:.3g}"))
            decimals = 2 if shown < 10 else 1 if shown < 100 else 0
            text = f"{value:.{decimals}f}"
            return f"{text.rstrip('0').rstrip('.') if '.' in text else text} {unit}"
    return f"{nbytes} B"


def exact_gb(nbytes: int) -> str:
    """The exact figure behind a rounded one, as the API and the CSV write it."""
    return f"{gb_text(bytes_to_gb(nbytes))} GB"


def limit_text(limit_gb: int) -> str:
    return "no limit" if limit_gb == 0 else f"{limit_gb:,} GB"


def used_percent(nbytes: int, limit_gb: int) -> float | None:
    """How much of a limit is used, 0-100 (capped); None when there is no limit."""
    if limit_gb <= 0:
        return None
    return min(100.0, 100.0 * nbytes / (limit_gb * GB))
