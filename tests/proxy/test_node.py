"""The node's life: graceful stop with drain and final flush; `meshproxy proxy` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from bench.local import free_port

from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.server.connection import ClientConnection
from meshproxy.store import Store
from support.polling import wait_until

from .clients import curl
from .conftest import Env, Origins


def test_stop_drains_open_requests_and_flushes_usage(start_env: Callable[..., Env]) -> None:
    env = start_env(flush_interval=60)  # only the stop flushes
    env.account("alice")
    env.sync()
    results: list[requests.Response] = []
    worker = threading.Thread(target=lambda: results.append(requests.get(
        env.origins.url("/slow/1"), proxies={"http": env.proxy_url()}, timeout=10)))
    worker.start()
    connections = env.node.services.connections
    wait_until(lambda: any(isinstance(c, ClientConnection) and c.active is not None
                           for c in list(connections)), 5)
    env.thread.run(env.node.stop(5.0))
    worker.join(10)
    assert results and results[0].status_code == 200 and results[0].text == "slow done"
    assert env.usage("alice")[1] > 0
    with pytest.raises(requests.ConnectionError):
        requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()}, timeout=5)


def test_meshproxy_proxy_command(tmp_path: Path, sqlite_url: str, origins: Origins) -> None:
    store = Store.open(sqlite_url)
    store.accounts.create("dave", password_hash=hash_password("pw"), proxies=["edge"],
                         billing_day=1)
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'database_url = "{sqlite_url}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        'plans = [{ name = "default", default_proxies = ["edge"] }]\n'
        "[proxy]\n"
        'allow_destinations = ["127.0.0.0/8"]\n'
        "[[proxies]]\n"
        f'name = "edge"\nport = {port}\n'
        'egress = [{ address = "127.0.0.7" }]\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "meshproxy", "proxy", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    headers = tmp_path / "headers.txt"
    try:
        assert process.stdout is not None
        for _ in range(50):
            line = process.stdout.readline().decode()
            if "listening" in line or not line:
                break
        assert f"proxy edge listening on 127.0.0.1:{port}" in line, line
        result = curl("-o", "/dev/null", "-D", str(headers), "-w",
                      "%{size_request} %{size_header} %{size_download}",
                      "-x", f"http://dave:pw@127.0.0.1:{port}",
                      origins.url("/echo"))
        assert "X-ProxyMesh-IP: 127.0.0.7" in headers.read_text()
        process.send_signal(signal.SIGTERM)  # graceful: the usage is flushed before exit
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    dave = store.accounts.get("dave")
    assert dave is not None
    moved = sum(int(n) for n in result.stdout.split())
    assert store.usage.of(dave, datetime.now(UTC))[1] == moved
    store.close()
