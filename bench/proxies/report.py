"""Pure parts of the proxy benchmark: reading wrk's output, medians, and the tables.

Nothing here starts a process or touches a socket, so it is unit-tested (tests/bench).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*([0-9]+) requests in ", re.MULTILINE)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m)\s*$", re.MULTILINE)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+([0-9]+)", re.MULTILINE)
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)"
)


class WrkOutputError(ValueError):
    """wrk printed something without a request rate (it failed to run)."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: tuple[int, int, int, int] = (0, 0, 0, 0)  # connect, read, write, timeout

    @property
    def failed(self) -> int:
        """Responses that were not 2xx/3xx plus connect and timeout errors. Read errors
        are left out: a proxy that closes after every response (tinyproxy) makes them."""
        connect, _read, _write, timeout = self.socket_errors
        return self.non_2xx + connect + timeout


def parse_wrk(text: str) -> WrkResult:
    """Read `wrk --latency` output."""
    rate = _RATE.search(text)
    total = _TOTAL.search(text)
    if rate is None or total is None:
        raise WrkOutputError(f"no request rate in wrk output: {text[-400:]!r}")
    percentiles = {p: float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(text)}
    non_2xx = _NON_2XX.search(text)
    errors = _SOCKET_ERRORS.search(text)
    return WrkResult(
        requests=int(total.group(1)),
        rate=float(rate.group(1)),
        p50_ms=percentiles.get("50", float("nan")),
        p99_ms=percentiles.get("99", float("nan")),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=(
            (int(errors[1]), int(errors[2]), int(errors[3]), int(errors[4]))
            if errors
            else (0, 0, 0, 0)
        ),
    )


def median(values: Sequence[float]) -> float | None:
    """The median of the measurements that exist (None: nothing was measured)."""
    present = [v for v in values if v == v]  # drop NaN
    return statistics.median(present) if present else None


@dataclass
class Row:
    """Every measurement of one proxy (lists: one entry per round or transfer)."""

    name: str
    small_rate: list[float] = field(default_factory=list)
    small_p50: list[float] = field(default_factory=list)
    small_p99: list[float] = field(default_factory=list)
    small_cpu_us: list[float] = field(default_factory=list)  # proxy CPU µs per request
    medium_rate: list[float] = field(default_factory=list)
    medium_p50: list[float] = field(default_factory=list)
    medium_p99: list[float] = field(default_factory=list)
    medium_cpu_us: list[float] = field(default_factory=list)
    connect_mbps: list[float] = field(default_factory=list)
    connect_core_s_per_gb: list[float] = field(default_factory=list)
    plain_mbps: list[float] = field(default_factory=list)
    plain_core_s_per_gb: list[float] = field(default_factory=list)
    tunnel_kib: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _versus(value: float | None, direct: float | None, digits: int = 0) -> str:
    text = _number(value, digits)
    if value is None or not direct:
        return text
    return f"{text} ({value / direct:.2f}x)"


def _spread(values: Sequence[float]) -> str:
    present = [v for v in values if v == v]
    if len(present) < 2:
        return ""
    return f" [{min(present):,.0f}-{max(present):,.0f}]"


def _latency(p50s: Sequence[float], p99s: Sequence[float]) -> str:
    p50, p99 = median(p50s), median(p99s)
    return "-" if p50 is None else f"{p50:.1f} / {_number(p99, 1)} ms"


def render_table(rows: Sequence[Row], direct: str = "direct") -> str:
    """The side-by-side Markdown table: medians, each with its ratio to the direct row."""
    base = next((r for r in rows if r.name == direct), None)
    base_small = median(base.small_rate) if base else None
    base_medium = median(base.medium_rate) if base else None
    base_connect = median(base.connect_mbps) if base else None
    base_plain = median(base.plain_mbps) if base else None
    lines = [
        "| proxy | 1 KiB req/s | p50 / p99 1 KiB | 64 KiB req/s | p50 / p99 64 KiB "
        "| CONNECT 1 GiB MB/s [min-max] | plain-HTTP 1 GiB MB/s [min-max] "
        "| KiB per idle tunnel |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row.name,
            _versus(median(row.small_rate), base_small),
            _latency(row.small_p50, row.small_p99),
            _versus(median(row.medium_rate), base_medium),
            _latency(row.medium_p50, row.medium_p99),
            _versus(median(row.connect_mbps), base_connect) + _spread(row.connect_mbps),
            _versus(median(row.plain_mbps), base_plain) + _spread(row.plain_mbps),
            _number(median(row.tunnel_kib), 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_cost_table(rows: Sequence[Row], direct: str = "direct") -> str:
    """What each proxy's own core paid: steadier than the rates on a shared machine."""
    lines = [
        "| proxy | CPU µs per 1 KiB request | CPU µs per 64 KiB request "
        "| CONNECT core-s per GB | plain core-s per GB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        if row.name == direct:
            continue
        cells = [
            row.name,
            _number(median(row.small_cpu_us), 1),
            _number(median(row.medium_cpu_us), 1),
            _number(median(row.connect_core_s_per_gb), 2),
            _number(median(row.plain_core_s_per_gb), 2),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_notes(rows: Sequence[Row]) -> str:
    return "\n".join(f"- {row.name}: {note}" for row in rows for note in row.notes)
