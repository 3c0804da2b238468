"""Fixtures of the hardening suite: the data-plane fixtures of tests/proxy (a real ProxyNode
in this process, real origins on loopback) and a node run as a `meshproxy proxy` subprocess,
whose memory and file descriptors are read from /proc.

Hypothesis profiles: `ci` (the default, a few hundred examples per property) and `long`
(HYPOTHESIS_PROFILE=long: 200,000 examples, no deadline) for the documented long run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.hardening import Node, raise_own_fd_limit, start_node
from bench.hardening import Origins as LoadOrigins
from bench.local import free_port
from hypothesis import HealthCheck, settings

from api.harness import Running, StartServer
from support.api_server import server_loop, start_server  # a real API server
from support.proxy_env import (  # the shared fixtures of the data-plane tests
    Env,
    Origins,
    env,
    origin_thread,
    origins,
    proxy_thread,
    start_env,
)

__all__ = ["Env", "Origins", "env", "origin_thread", "origins", "proxy_thread", "server_loop",
           "start_env", "start_server"]

@pytest.fixture(scope="module")
def api(start_server: StartServer) -> Iterator[Running]:
    """A real API server of the module's own (its own store)."""
    running = start_server()
    yield running
    running.close_clients()


# The suite's profile is derandomized: the same 300 examples every run, so a red CI means a
# change in the code, never a lucky draw. The long profile explores at random.
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=200_000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Callable[..., Node]]:
    """node_process(**proxy behaviour) -> a running `meshproxy proxy` (accounts alice and bob,
    password pw) on tmp_path's SQLite file; killed after the test if still running."""
    started: list[Node] = []

    def start(**behaviour: Any) -> Node:
        node = start_node(tmp_path / "node", **behaviour)
        started.append(node)
        return node

    yield start
    for node in started:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(10)
        node.store.close()


@pytest.fixture(scope="session")
def load_origins() -> Iterator[LoadOrigins]:
    """An echo port and a small keep-alive HTTP origin (bench.hardening) on loopback."""
    raise_own_fd_limit()
    running = LoadOrigins()
    yield running
    running.close()


from .dashboard import dash  # noqa: E402 - the dashboard over two tenants

__all__ += ["dash", "free_port", "load_origins", "node_process"]
