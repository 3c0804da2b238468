"""Prometheus metrics, read from the node's own state at scrape time: nothing is added to
the data plane's hot path but one sum per proxy listener (meter/counting.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from meshproxy.ops.responses import ResponseCollector
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.core.health import EgressState
from meshproxy.proxy.server.stats import NodeStats


class NodeCollector:
    def __init__(self, status: NodeStatus, loop: asyncio.AbstractEventLoop) -> None:
        self._status = status
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        status = self._status
        node = status.proxy_node
        if node is not None:
            yield from _node_metrics(node.stats(time.time(), self._loop.time()))
        if status.folding is not None and status.folding.last_fold:
            yield GaugeMetricFamily(
                "meshproxy_fold_lag_seconds",
                "Seconds since this node last folded Redis usage into the store.",
                value=self._loop.time() - status.folding.last_fold,
            )
        up = GaugeMetricFamily(
            "meshproxy_backend_up", "1 if the backend answered last time.", labels=["backend"]
        )
        errors = CounterMetricFamily(
            "meshproxy_backend_errors", "Failed calls to the backend.", labels=["backend"]
        )
        for backend in status.backends():
            up.add_metric([backend.name], 1.0 if backend.up else 0.0)
            errors.add_metric([backend.name], backend.errors)
        yield up
        yield errors


def _node_metrics(stats: NodeStats) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "meshproxy_proxy_requests",
        "Requests authenticated and decided (served, or refused 402/509).",
        labels=["proxy"],
    )
    moved = CounterMetricFamily(
        "meshproxy_proxy_bytes", "Bytes metered (both directions).", labels=["proxy"]
    )
    active = GaugeMetricFamily(
        "meshproxy_proxy_active_connections", "Open client connections.", labels=["proxy"]
    )
    for name, proxy in stats.proxies.items():
        requests.add_metric([name], proxy.requests)
        moved.add_metric([name], proxy.nbytes)
        active.add_metric([name], proxy.open_connections)
    yield requests
    yield moved
    yield active
    yield from _egress_metrics(stats.egress)
    counter, gauge = CounterMetricFamily, GaugeMetricFamily
    # (kind, name, help, value): None leaves the metric out (no access log, no Redis).
    scalars: list[tuple[type[CounterMetricFamily | GaugeMetricFamily], str, str, float | None]] = [
        (counter, "meshproxy_auth_failures", "Proxy authentication failures on this node.",
         stats.auth_failures),
        (gauge, "meshproxy_auth_verifications",
         "Password checks (argon2) of new credentials under way or queued.",
         stats.verifications),
        (counter, "meshproxy_auth_verifications_refused",
         "Requests refused 503 because too many password checks were under way.",
         stats.verifications_refused),
        (gauge, "meshproxy_bans_active", "Client IPs banned (decided here or by any node).",
         stats.bans_active),
        (counter, "meshproxy_access_log_dropped",
         "Access-log lines dropped: the queue was full (a slow disk) or their write failed "
         "(a full disk).", stats.access_log_dropped),
        (gauge, "meshproxy_accounts_loaded", "Accounts in the proxy directory.",
         stats.accounts_loaded),
        (gauge, "meshproxy_usage_flush_lag_seconds",
         "Seconds since usage was last flushed (grows while the backend is down).",
         stats.flush_lag),
        (gauge, "meshproxy_usage_unflushed_bytes",
         "Bytes counted here and not yet flushed (kept while the backend is down).",
         stats.unflushed_bytes),
        (gauge, "meshproxy_usage_unfolded_flushes",
         "Flushes this node sent to Redis that no fold has confirmed yet (its journal, "
         "written to the store if Redis loses them).", stats.unfolded_flushes),
    ]
    for kind, name, documentation, value in scalars:
        if value is not None:
            yield kind(name, documentation, value=value)


def _egress_metrics(health: dict[str, dict[str, EgressState]]) -> Iterator[Metric]:
    """Each upstream egress as the node sees it (control/egress_health.py reads these)."""
    labels = ["proxy", "egress"]
    up = GaugeMetricFamily(
        "meshproxy_egress_up", "1 while an upstream egress is in rotation.", labels=labels
    )
    failures = CounterMetricFamily(
        "meshproxy_egress_failures",
        "Connects, handshakes and probes through an upstream egress that failed.",
        labels=labels,
    )
    latency = GaugeMetricFamily(
        "meshproxy_egress_latency_seconds",
        "Seconds the last good connect or probe through an upstream egress took.",
        labels=labels,
    )
    for proxy, members in health.items():
        for name, state in members.items():
            up.add_metric([proxy, name], 1.0 if state.up else 0.0)
            failures.add_metric([proxy, name], state.failures_total)
            if state.latency is not None:
                latency.add_metric([proxy, name], state.latency)
    yield up
    yield failures
    yield latency


def registry_for(status: NodeStatus, loop: asyncio.AbstractEventLoop) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NodeCollector(status, loop))
    registry.register(ResponseCollector(status))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return bytes(generate_latest(registry))
