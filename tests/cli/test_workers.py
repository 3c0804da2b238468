"""`--workers N`: several processes share the ports (SO_REUSEPORT) over one SQLite file;
usage adds up exactly and a ban decided from failures seen by different workers holds on
all of them. `meshproxy api` with no subcommand runs an API node."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from bench.local import free_port

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from support.polling import eventually


def launch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "meshproxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(process: subprocess.Popen[str], text: str) -> str:
    assert process.stdout is not None
    seen = ""
    for _ in range(200):
        line = process.stdout.readline()
        seen += line
        if text in line or not line:
            break
    assert text in seen, seen
    return seen


def worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return {int(pid) for pid in children}


def edge_node_config(
    tmp_path: Path, sqlite_url: str, port: int, sections: str = "[admin]\nenabled = false\n"
) -> Path:
    """node.toml for a proxy node with one listener, "edge" on `port`, that may reach
    loopback origins; `sections` adds (or replaces the default [admin]) tables."""
    config = tmp_path / "node.toml"
    config.write_text(
        f'database_url = "{sqlite_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        'plans = [{ name = "default", default_proxies = ["edge"] }]\n'
        f"{sections}"
        '[proxy]\nallow_destinations = ["127.0.0.0/8"]\n'
        f'[[proxies]]\nname = "edge"\nport = {port}\n'
    )
    return config


def serve_directory(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """An origin on 127.0.0.1:`port` serving the files in `directory`."""
    return subprocess.Popen([sys.executable, "-m", "http.server", str(port),
                             "--bind", "127.0.0.1", "--directory", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_proxy_workers_share_port_usage_and_bans(tmp_path: Path, sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    store.accounts.create("erin", password_hash=hash_password("pw"), proxies=["edge"],
                         billing_day=1)
    port, origin_port = free_port(), free_port()
    config = edge_node_config(tmp_path, sqlite_url, port)
    origin = serve_directory(tmp_path, origin_port)
    (tmp_path / "blob").write_bytes(b"b" * 100_000)
    node = launch("proxy", "--config", str(config), "--workers", "3")
    try:
        wait_for(node, f"proxy edge listening on 127.0.0.1:{port}")
        assert eventually(lambda: len(worker_pids(node.pid)) == 3)
        moved = 0
        url = f"http://127.0.0.1:{origin_port}/blob"
        for _ in range(30):  # a new connection each: the kernel spreads them over workers
            with httpx.Client(proxy=f"http://erin:pw@127.0.0.1:{port}", timeout=10) as client:
                response = client.get(url)
            assert response.status_code == 200 and len(response.content) == 100_000
            moved += len(response.content)
        for _ in range(4):
            with httpx.Client(proxy=f"http://erin:bad@127.0.0.1:{port}", timeout=10) as client:
                assert client.get(url).status_code == 407
        # The failures meet in the store (each worker reports its own); wait for the ban
        # there before sending good credentials, whose success would reset the count.
        assert eventually(lambda: bool(store.bans.active(time.time())))

        def banned_everywhere() -> bool:
            # The failures meet in the store; every worker adopts the ban. Twelve new
            # connections in a row refused: the kernel spreads them over all three workers.
            for _ in range(12):
                with httpx.Client(proxy=f"http://erin:pw@127.0.0.1:{port}", timeout=10) as c:
                    refused = c.get(url)
                if refused.status_code != 407 or "banned" not in refused.text:
                    nonlocal moved  # served by a worker that had not adopted the ban yet
                    moved += len(refused.content) if refused.status_code == 200 else 0
                    return False
            return True

        assert eventually(banned_everywhere)
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    finally:
        for process in (node, origin):
            if process.poll() is None:
                process.kill()
                process.wait()
    erin = store.accounts.get("erin")
    assert erin is not None
    monthly, total = store.usage.of(erin, datetime.now(UTC))
    assert total == monthly and moved < total < moved * 1.05  # bodies plus every header
    store.close()


def test_meshproxy_api_without_a_subcommand_runs_an_api_node(tmp_path: Path) -> None:
    https_port = free_port()
    config = tmp_path / "api.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f"[api]\nhttps_port = {https_port}\nhttp_port = {free_port()}\n"
        "[admin]\nenabled = false\n"
    )
    node = launch("api", "--config", str(config), "--workers", "2")
    try:
        banner = wait_for(node, "Stop with Ctrl-C")
        assert "Proxy:" not in banner and banner.count("password:") == 1
        assert eventually(lambda: len(worker_pids(node.pid)) == 2)
        for _ in range(6):
            response = httpx.get(f"https://127.0.0.1:{https_port}/api/proxies/", verify=False)
            assert response.status_code == 401
        node.send_signal(signal.SIGTERM)
        assert node.wait(30) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
