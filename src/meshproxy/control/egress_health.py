"""The health of the proxies' upstream egresses, as the proxy node on this host sees it.

The node keeps it in memory (proxy/core/health.py) and exports it on its admin
listener's /metrics (meshproxy_egress_up, _failures_total, _latency_seconds); the
dashboard and `meshproxy admin proxies` read it from there ([admin] listen and port:
the first worker's). With several nodes each has its own view: this is this host's.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from meshproxy.config import ProxyConfig, Settings

TIMEOUT = 0.5


@dataclass(frozen=True)
class EgressStatus:
    up: bool
    failures: int = 0
    latency: float | None = None  # seconds of the last good connect or probe


Report = dict[str, dict[str, EgressStatus]]  # proxy -> egress name -> status


def read_egress_health(
    settings: Settings, timeout: float = TIMEOUT, *, fresh_for: float = 0.0
) -> Report | None:
    """Every upstream egress's status by proxy, or None when no node answers.
    `fresh_for`: an answer (or the lack of one) this recent is reused, so a page viewed
    often asks the node at most that often and never waits on a node that is not there."""
    admin = settings.admin
    if not admin.enabled:
        return None
    host = f"[{admin.listen}]" if ":" in admin.listen else admin.listen
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    url = f"http://{host}:{admin.port}/metrics"
    now = time.monotonic()
    kept = _recent.get(url)
    if kept is not None and now - kept[0] < fresh_for:
        return kept[1]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            report: Report | None = parse_metrics(answer.read().decode("utf-8", "replace"))
    except (OSError, urllib.error.URLError, ValueError):
        report = None
    _recent[url] = (now, report)
    return report


_recent: dict[str, tuple[float, Report | None]] = {}  # url -> (when, what it said)


def parse_metrics(text: str) -> Report:
    values: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("meshproxy_egress_"):
            continue
        for sample in family.samples:
            key = (sample.labels.get("proxy", ""), sample.labels.get("egress", ""))
            values.setdefault(key, {})[sample.name] = sample.value
    report: Report = {}
    for (proxy, egress), fields in values.items():
        if "meshproxy_egress_up" not in fields:
            continue
        report.setdefault(proxy, {})[egress] = EgressStatus(
            up=fields["meshproxy_egress_up"] == 1.0,
            failures=int(fields.get("meshproxy_egress_failures_total", 0)),
            latency=fields.get("meshproxy_egress_latency_seconds"),
        )
    return report


def summary(proxy: ProxyConfig, report: Report | None) -> str:
    """One proxy's upstream health in a few words: "" when its pool has no upstream,
    "unknown" when no node answered, else how many are up and which are out."""
    names = [e.label for e in proxy.egress if e.upstream is not None]
    if not names:
        return ""
    if report is None:
        return "unknown (no proxy node answered)"
    seen = report.get(proxy.name, {})
    down = [name for name in names if name in seen and not seen[name].up]
    text = f"{len(names) - len(down)} of {len(names)} upstreams up"
    return f"{text}; out: {', '.join(down)}" if down else text
