"""One /metrics for every worker of a node (`--workers N`).

Each worker keeps its own figures and its own admin listener (worker i on `admin.port +
i`). The first worker's /metrics asks the others for theirs (`/metrics?local`, on
loopback, each within a second), and answers every worker's samples under a `worker`
label ("0", "1", ...), with `meshproxy_worker_up{worker}` saying which answered. Sum them
with `sum without (worker) (...)`. Chosen over prometheus-client's multiprocess mode: the
node's metrics are read from its state at scrape time (no metric objects on the request
path), which that mode cannot share across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

PEER_TIMEOUT = 1.0
MAX_ANSWER = 16 * 1024 * 1024


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """What the peer sends until it closes (its admin listener closes after each answer),
    up to MAX_ANSWER: one read() returns only what has arrived so far."""
    answer = b""
    while len(answer) < MAX_ANSWER:
        chunk = await reader.read(MAX_ANSWER - len(answer))
        if not chunk:
            break
        answer += chunk
    return answer


async def local_metrics(host: str, port: int) -> str | None:
    """Another worker's own metrics text, or None if it did not answer in PEER_TIMEOUT."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(PEER_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET /metrics?local HTTP/1.1\r\nHost: worker\r\n\r\n")
            answer = await _read_to_end(reader)
    except (OSError, TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        return None
    return body.decode("utf-8", "replace")


class _Merged:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge(texts: Sequence[tuple[str, str | None]]) -> bytes:
    """(worker label, its metrics text or None) -> one exposition, every sample labelled."""
    families: dict[str, Metric] = {}
    up = GaugeMetricFamily(
        "meshproxy_worker_up", "1 if the worker answered this scrape.", labels=["worker"]
    )
    for worker, text in texts:
        up.add_metric([worker], 0.0 if text is None else 1.0)
        for family in text_string_to_metric_families(text or ""):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            merged.samples += [
                Sample(s.name, {**s.labels, "worker": worker}, s.value, s.timestamp, s.exemplar)
                for s in family.samples
            ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged([up, *families.values()]))
    return bytes(generate_latest(registry))
