"""What a node's responses tell its metrics (ops/metrics.py): responses by proxy, who
answered and status class, the time to the response head, and the proxy's own 5xx answers
by their RFC 9209 error type (upstream and egress failures: DNS, refused, timed out...).

Counted once per exchange, tunnel or SOCKS5 connection where it ends (server/access.py),
in plain dicts: a few dictionary additions on the request path, read at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

# Seconds from a request's head to its response head (1xx interims not counted).
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

ORIGIN: Final = "origin"
PROXY: Final = "proxy"
_CLASSES: Final = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """'2xx' for 200..299 and so on; 'none' when no status was sent."""
    return _CLASSES[status // 100] if 100 <= status < 600 else _CLASSES[0]


class Latency:
    """One histogram: a count per bucket (not cumulative; `cumulative` makes them so)."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bucket
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as Prometheus writes it, observations at or below it), '+Inf' last."""
        out, running = [], 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


class Outcomes:
    """The node's counters since it started."""

    __slots__ = ("errors", "latency", "responses")

    def __init__(self) -> None:
        self.responses: dict[tuple[str, str, str], int] = {}  # (proxy, by, class) -> n
        self.latency: dict[str, Latency] = {}  # proxy -> time to the response head
        self.errors: dict[tuple[str, str], int] = {}  # (proxy, RFC 9209 type) -> n

    def response(
        self, proxy: str, status: int, *, by_proxy: bool, first_byte: float | None = None
    ) -> None:
        """One response (or tunnel, or SOCKS5 reply) sent; `first_byte`: seconds from the
        request's head to the response head, when one came from upstream."""
        key = (proxy, PROXY if by_proxy else ORIGIN, status_class(status))
        responses = self.responses
        responses[key] = responses.get(key, 0) + 1
        if first_byte is not None:
            self.first_byte(proxy, first_byte)

    def first_byte(self, proxy: str, seconds: float) -> None:
        latency = self.latency.get(proxy)
        if latency is None:
            latency = self.latency[proxy] = Latency()
        latency.observe(seconds)

    def error(self, proxy: str, error_type: str) -> None:
        key = (proxy, error_type)
        self.errors[key] = self.errors.get(key, 0) + 1
