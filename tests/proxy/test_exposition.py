"""ops/exposition.py writes the families a node's collectors build as prometheus_client's
generate_latest writes the same families, byte for byte: names, HELP escaping, label order
and escaping, Go's number notation, histograms."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from meshproxy.ops.exposition import Counter, Family, Gauge, Histogram, render

VALUES = [0, 3, 0.25, -2.5, 1234567.0, 12345678.0, 1e16, 1.5e-7, math.inf, -math.inf, math.nan]
LABEL_VALUES = ["edge", "", 'say "hi"', "back\\slash", "two\nlines", "ünïcode"]
HELP = 'Bytes "metered" (both directions),\nwith a back\\slash.'


class Families:
    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Family]:
        yield from self.families


class Metrics:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def theirs(*metrics: Metric) -> bytes:
    registry = CollectorRegistry()
    registry.register(Metrics(list(metrics)))
    return bytes(generate_latest(registry))


@pytest.mark.parametrize("value", VALUES)
def test_an_unlabelled_counter_and_gauge(value: float) -> None:
    ours = render([Families([Counter("meshproxy_x", HELP, value=value),
                             Gauge("meshproxy_y", "A gauge.", value=value)])])
    expected = theirs(CounterMetricFamily("meshproxy_x", HELP, value=value),
                      GaugeMetricFamily("meshproxy_y", "A gauge.", value=value))
    assert ours == expected


def test_labelled_samples_with_values_to_escape() -> None:
    labels = ["proxy", "by", "class"]
    ours_counter, ours_gauge = Counter("c", HELP, labels=labels), Gauge("g", HELP, labels=labels)
    their_counter = CounterMetricFamily("c", HELP, labels=labels)
    their_gauge = GaugeMetricFamily("g", HELP, labels=labels)
    for index, text in enumerate(LABEL_VALUES):
        values = [text, "origin", f"{index}xx"]
        ours_counter.add_metric(values, index)
        their_counter.add_metric(values, index)
        ours_gauge.add_metric(values, index / 3)
        their_gauge.add_metric(values, index / 3)
    assert render([Families([ours_counter, ours_gauge])]) == theirs(their_counter, their_gauge)


def test_a_histogram_and_families_with_no_samples() -> None:
    buckets = [("0.005", 0.0), ("0.25", 3.0), ("1.0", 7.0), ("+Inf", 9.0)]
    ours = Histogram("meshproxy_h_seconds", HELP, labels=["proxy"])
    mine = HistogramMetricFamily("meshproxy_h_seconds", HELP, labels=["proxy"])
    for proxy in ("edge", "b"):
        ours.add_metric([proxy], buckets, 2.75)
        mine.add_metric([proxy], buckets, 2.75)
    empty = [Counter("e", "Empty.", labels=["proxy"]), Gauge("f", "Empty.", labels=["proxy"]),
             Histogram("h", "Empty.", labels=["proxy"])]
    expected = theirs(mine, CounterMetricFamily("e", "Empty.", labels=["proxy"]),
                      GaugeMetricFamily("f", "Empty.", labels=["proxy"]),
                      HistogramMetricFamily("h", "Empty.", labels=["proxy"]))
    assert render([Families([ours]), Families(empty)]) == expected
