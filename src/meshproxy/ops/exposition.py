"""Prometheus' text format (0.0.4) for the metric families a node's collectors build at
scrape time, written byte for byte as prometheus_client's `generate_latest` writes the same
families (tests/proxy/test_exposition.py).

Not prometheus_client itself: importing any of its modules runs its package, which imports
its HTTP servers and clients (http.server, http.client, urllib.request, wsgiref, gzip), 2.1
MiB of a proxy node's RSS (docs/benchmarks.md). The API side and a node of several workers
(ops/workers.py parses its workers' texts) still use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol


class Sample(NamedTuple):
    name: str
    labels: dict[str, str]
    value: float


class Family:
    """One metric family: its name, help text, type and samples."""

    kind = "untyped"
    __slots__ = ("documentation", "labelnames", "name", "samples")

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labels)
        self.samples: list[Sample] = []

    def _labelled(self, values: Sequence[str]) -> dict[str, str]:
        return dict(zip(self.labelnames, values, strict=False))


class _Valued(Family):
    """A counter or a gauge: one value for each label set (or one value and no labels)."""

    suffix = ""
    __slots__ = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        value: float | None = None,
        labels: Sequence[str] = (),
    ) -> None:
        super().__init__(name, documentation, labels)
        if value is not None:
            self.add_metric([], value)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.samples.append(Sample(self.name + self.suffix, self._labelled(labels), value))


class Counter(_Valued):
    """Written as `NAME_total` (its samples and its HELP and TYPE lines)."""

    kind = "counter"
    suffix = "_total"
    __slots__ = ()


class Gauge(_Valued):
    kind = "gauge"
    __slots__ = ()


class Histogram(Family):
    kind = "histogram"
    __slots__ = ()

    def add_metric(
        self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float
    ) -> None:
        """`buckets`: (upper bound as written, e.g. "0.5" or "+Inf", cumulative count),
        "+Inf" last."""
        labelled = self._labelled(labels)
        for bound, count in buckets:
            self.samples.append(Sample(f"{self.name}_bucket", {**labelled, "le": bound}, count))
        self.samples.append(Sample(f"{self.name}_count", labelled, buckets[-1][1]))
        self.samples.append(Sample(f"{self.name}_sum", labelled, sum_value))


class Collector(Protocol):
    def collect(self) -> Iterator[Family]: ...


def render(collectors: Iterable[Collector]) -> bytes:
    """Every family the collectors yield now, in their order."""
    out: list[str] = []
    for collector in collectors:
        for family in collector.collect():
            name = f"{family.name}_total" if family.kind == "counter" else family.name
            out.append(f"# HELP {name} {_escape_help(family.documentation)}\n")
            out.append(f"# TYPE {name} {family.kind}\n")
            out.extend(_line(sample) for sample in family.samples)
    return "".join(out).encode()


def _line(sample: Sample) -> str:
    labels = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(sample.labels.items()))
    braced = f"{{{labels}}}" if labels else ""
    return f"{sample.name}{braced} {_number(sample.value)}\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _escape_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _number(value: float) -> str:
    """A value as Go (and so prometheus_client) writes it: +Inf, -Inf, NaN, 3.0, 1.5e+07."""
    number = float(value)
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    text = repr(number)
    dot = text.find(".")
    if number > 0 and dot > 6:  # Go switches to an exponent sooner than Python
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
