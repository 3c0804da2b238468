"""`--workers 2` writing one access log: every request one whole line, across rotations
both workers make, and the lines' bytes add up to the usage the workers metered."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bench.local import free_port

from cli.test_workers import edge_node_config, launch, serve_directory, wait_for, worker_pids
from meshproxy.accesslog.search import log_files
from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from support.polling import eventually

REQUESTS = 60


def test_two_workers_share_one_rotated_access_log(tmp_path: Path, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.accounts.create("erin", password_hash=hash_password("pw"), proxies=["edge"],
                         billing_day=1)
    port, origin_port = free_port(), free_port()
    data = tmp_path / "data"
    config = edge_node_config(
        tmp_path, sqlite_url, port,
        '[admin]\nenabled = false\n'
        '[access_log]\nmax_bytes = 3000\nbackups = 100\ninterval = 0.05\n',  # ~8 lines a file
    )
    (tmp_path / "blob").write_bytes(b"b" * 5000)
    origin = serve_directory(tmp_path, origin_port)
    node = launch("proxy", "--config", str(config), "--workers", "2")
    try:
        wait_for(node, f"proxy edge listening on 127.0.0.1:{port}")
        assert eventually(lambda: len(worker_pids(node.pid)) == 2)
        url = f"http://127.0.0.1:{origin_port}/blob"
        for _ in range(REQUESTS):  # a new connection each: the kernel spreads them
            with httpx.Client(proxy=f"http://erin:pw@127.0.0.1:{port}", timeout=10) as client:
                assert client.get(url).status_code == 200
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0  # each worker writes what it queued, and flushes usage
    finally:
        for process in (node, origin):
            if process.poll() is None:
                process.kill()
                process.wait()
    files = log_files(data / "access.log")
    assert len(files) > 3  # rotated many times
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(lines) == REQUESTS
    assert all(line["account"] == "erin" and line["status"] == 200 for line in lines)
    assert all(f.stat().st_size <= 3000 for f in files)
    erin = store.accounts.get("erin")
    assert erin is not None
    _, total = store.usage.of(erin, datetime.now(UTC))
    assert total == sum(line["bytes_in"] + line["bytes_out"] for line in lines)
    store.close()
