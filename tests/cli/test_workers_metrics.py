"""`--workers 2`: one /metrics (the first worker's admin listener) covers both workers,
each sample under a `worker` label; every request through either worker is in it."""

from __future__ import annotations

import signal
import socket
import urllib.request
from collections import defaultdict
from pathlib import Path

import httpx
from bench.local import free_port
from prometheus_client.parser import text_string_to_metric_families

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from support.polling import eventually

from .test_workers import edge_node_config, launch, serve_directory, wait_for, worker_pids


def two_free_ports() -> int:
    """A port p with p + 1 free too (worker i's admin listener is on p + i)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two adjacent free ports")


def metrics(port: int, query: str = "") -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics{query}", timeout=10) as r:
        text = r.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def test_one_metrics_page_covers_every_worker(tmp_path: Path, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.accounts.create("erin", password_hash=hash_password("pw"), proxies=["edge"],
                         billing_day=1)
    store.close()
    port, origin_port, admin = free_port(), free_port(), two_free_ports()
    config = edge_node_config(tmp_path, sqlite_url, port, f"[admin]\nport = {admin}\n")
    origin = serve_directory(tmp_path, origin_port)
    (tmp_path / "page").write_bytes(b"p" * 1000)
    node = launch("proxy", "--config", str(config), "--workers", "2")
    try:
        wait_for(node, f"proxy edge listening on 127.0.0.1:{port}")
        assert eventually(lambda: len(worker_pids(node.pid)) == 2)
        url = f"http://127.0.0.1:{origin_port}/page"
        sent = 24
        for _ in range(sent):  # a new connection each: the kernel spreads them over workers
            with httpx.Client(proxy=f"http://erin:pw@127.0.0.1:{port}", timeout=10) as client:
                assert client.get(url).status_code == 200
        with httpx.Client(proxy=f"http://erin:pw@127.0.0.1:{port}", timeout=10) as client:
            assert client.get(f"http://127.0.0.1:{origin_port}/missing").status_code == 404

        def relayed(found: dict[str, list[tuple[dict[str, str], float]]], cls: str) -> float:
            return sum(value for labels, value in found["meshproxy_responses_total"]
                       if labels["by"] == "origin" and labels["class"] == cls)

        def counted() -> bool:
            return relayed(metrics(admin), "2xx") == sent

        assert eventually(counted)  # each response is counted as its exchange ends
        found = metrics(admin)
        up = {labels["worker"]: value for labels, value in found["meshproxy_worker_up"]}
        assert up == {"0": 1.0, "1": 1.0}
        requests = {labels["worker"]: value
                    for labels, value in found["meshproxy_proxy_requests_total"]}
        assert set(requests) == {"0", "1"} and sum(requests.values()) == sent + 1
        assert all(requests.values())  # 25 new connections: both workers served some
        assert relayed(found, "4xx") == 1
        heads = {labels["worker"]: value
                 for labels, value in found["meshproxy_response_head_seconds_count"]}
        assert sum(heads.values()) == sent + 1
        # Each worker's own page: its figures only, without the label; they add up.
        own = [metrics(admin + i, "?local") for i in (0, 1)]
        assert all("worker" not in labels for page in own
                   for labels, _ in page["meshproxy_responses_total"])
        assert sum(relayed(page, "2xx") for page in own) == sent
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    finally:
        for process in (node, origin):
            if process.poll() is None:
                process.kill()
                process.wait()
