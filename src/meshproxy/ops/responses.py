"""The metrics of what the node answered (proxy/core/outcomes.py), read at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from meshproxy.ops.status import NodeStatus


class ResponseCollector:
    def __init__(self, status: NodeStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        node = self._status.proxy_node
        if node is None or not node.started:
            return
        outcomes = node.services.outcomes
        responses = CounterMetricFamily(
            "meshproxy_responses",
            "Responses to clients by proxy, who answered (origin: relayed; proxy: its own "
            "answer, or a tunnel opened) and status class ('none': the client left first).",
            labels=["proxy", "by", "class"],
        )
        for (proxy, by, status_class), count in sorted(outcomes.responses.items()):
            responses.add_metric([proxy, by, status_class], count)
        yield responses
        latency = HistogramMetricFamily(
            "meshproxy_response_head_seconds",
            "Seconds from a request's head to the origin's response head sent to the client "
            "(its first byte; 1xx interims not counted).",
            labels=["proxy"],
        )
        for proxy, histogram in sorted(outcomes.latency.items()):
            latency.add_metric([proxy], histogram.cumulative(), histogram.sum)
        yield latency
        errors = CounterMetricFamily(
            "meshproxy_upstream_errors",
            "The proxy's own 5xx answers (and SOCKS5 requests that failed so) by RFC 9209 "
            "error type (dns_error, connection_refused, connection_timeout, ...).",
            labels=["proxy", "error"],
        )
        for (proxy, error_type), count in sorted(outcomes.errors.items()):
            errors.add_metric([proxy, error_type], count)
        yield errors
