"""Fixtures of the hardening suite: the data-plane fixtures of tests/proxy (a real ProxyNode
in this process, real origins on loopback) and a node run as a `meshproxy proxy` subprocess,
whose memory and file descriptors are read from /proc.

Hypothesis profiles: `ci` (the default, a few hundred examples per property) and `long`
(HYPOTHESIS_PROFILE=long: 200,000 examples, no deadline) for the documented long run.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store
from proxy.conftest import (  # the shared fixtures of the data-plane tests
    Env,
    Origins,
    env,
    free_port,
    origin_thread,
    origins,
    proxy_thread,
    start_env,
)

__all__ = ["Env", "Origins", "env", "origin_thread", "origins", "proxy_thread", "start_env"]

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=200_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def raise_own_fd_limit() -> int:
    """The test process holds the client ends of many connections: lift its soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class ProxyProcess:
    """`meshproxy proxy` as a child process on its own SQLite file."""

    process: subprocess.Popen[bytes]
    port: int
    store: Store
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def url(self, user: str = "alice", password: str = "pw") -> str:
        return f"http://{user}:{password}@127.0.0.1:{self.port}"

    def status(self, field: str) -> int:
        """A figure from /proc/<pid>/status, in kB for memory fields (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def rss_kib(self) -> int:
        return self.status("VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def usage(self, username: str = "alice") -> int:
        import datetime as dt

        record = self.store.get_account(username)
        assert record is not None
        return self.store.usage(record, dt.datetime.now(dt.UTC))[1]


def write_node_config(path: Path, database_url: str, data_dir: Path, port: int,
                      **behaviour: Any) -> None:
    lines = [
        f'database_url = "{database_url}"',
        f'data_dir = "{data_dir}"',
        'plans = [{ name = "default", default_proxies = ["edge"] }]',
        "[proxy]",
        'allow_destinations = ["127.0.0.0/8", "::1/128"]',
        *(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
          for k, v in behaviour.items()),
        "[[proxies]]",
        f'name = "edge"\nport = {port}',
        'egress = [{ address = "127.0.0.7" }, { address = "127.0.0.8" }]',
    ]
    path.write_text("\n".join(lines) + "\n")


def spawn_node(tmp_path: Path, store: Store, database_url: str, **behaviour: Any) -> ProxyProcess:
    port = free_port()
    config = tmp_path / "node.toml"
    write_node_config(config, database_url, tmp_path / "data", port, **behaviour)
    log = tmp_path / "node.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshproxy", "proxy", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 20
    while f"listening on 127.0.0.1:{port}" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"the node did not start:\n{log.read_text()}")
        time.sleep(0.05)
    return ProxyProcess(process, port, store, log)


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """node_process(**proxy behaviour) -> a running `meshproxy proxy` with account alice/pw."""
    started: list[ProxyProcess] = []
    url = f"sqlite:///{tmp_path / 'node.sqlite3'}"
    store = Store.open(url)
    store.create_account("alice", password_hash=hash_password("pw"), proxies=["edge"],
                         billing_day=1)

    def start(**behaviour: Any) -> ProxyProcess:
        node = spawn_node(tmp_path, store, url, **behaviour)
        started.append(node)
        return node

    yield start
    for node in started:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(10)
    store.close()


__all__ += ["ProxyProcess", "free_port", "node_process", "raise_own_fd_limit", "spawn_node"]
