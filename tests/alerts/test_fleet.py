"""Usage alerts on a fleet of real processes: two `meshproxy api-node`s on one PostgreSQL
database both check and deliver; a sub-account pushed over its limit gives the parent's
webhook one signed 80 % and one 100 % call (the first retried after a 500), not one per
node."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.local import free_port

from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store
from support.polling import wait_until

from .receiver import Receiver

SECRET = "fleet-secret-0123456789"


def start_api_node(directory: Path, database_url: str) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "MESHPROXY_DATA_DIR": str(directory / "data"),
        "MESHPROXY_DATABASE_URL": database_url,
        "MESHPROXY_FIRST_PARENT": "false",
        "MESHPROXY_API__HTTPS_PORT": str(free_port()),
        "MESHPROXY_API__HTTP_PORT": str(free_port()),
        "MESHPROXY_ADMIN__PORT": str(free_port()),
        "MESHPROXY_ALERTS__INTERVAL": "0.05",
        "MESHPROXY_ALERTS__ALLOW_HTTP": "true",
        "MESHPROXY_ALERTS__ALLOW_NETWORKS": '["127.0.0.0/8"]',
        "MESHPROXY_ALERTS__RETRY_BASE": "0.3",
    }
    directory.mkdir(parents=True)
    with (directory / "node.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshproxy", "api-node"],
            cwd=directory,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        assert line, (directory / "node.log").read_text()
        if line.startswith("Stop with Ctrl-C"):
            return process
    raise AssertionError("the API node did not start")


def test_two_api_nodes_send_each_notice_once(tmp_path: Path, postgres_url: str) -> None:
    store = Store.open(postgres_url)
    receiver = Receiver(fail=1).start()
    nodes: list[subprocess.Popen[str]] = []
    try:
        parent = store.accounts.create("pm_parent", plan="default", billing_day=1)
        sub = store.accounts.create("pm_sub", parent_id=parent.id, monthly_limit_gb=1)
        now = datetime.now(UTC)
        store.alerts.add_webhook(parent.id, receiver.url, SECRET, now, max_webhooks=1)
        nodes = [start_api_node(tmp_path / f"node{i}", postgres_url) for i in (1, 2)]
        store.usage.record([UsageDelta(sub.id, parent.id, 85 * GB // 100)], now.date())
        wait_until(lambda: len(receiver.accepted()) == 1, 20, interval=0.05)
        store.usage.record([UsageDelta(sub.id, parent.id, 20 * GB // 100)], now.date())
        wait_until(lambda: len(receiver.accepted()) == 2, 20, interval=0.05)
        time.sleep(1.0)  # both nodes go on checking and claiming: nothing more comes
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            assert node.wait(timeout=30) == 0
        receiver.stop()
    calls = [(json.loads(c.body)["threshold"], c.answered) for c in receiver.calls]
    assert calls == [(80, 500), (80, 204), (100, 204)]
    for call in receiver.calls:
        expected = hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers["x-meshproxy-signature"] == f"sha256={expected}"
    [hundred, eighty] = store.alerts.history(parent.id)
    assert [a.status for a in eighty.deliveries[0].attempts] == [500, 204]
    assert [a.status for a in hundred.deliveries[0].attempts] == [204]
    store.close()
