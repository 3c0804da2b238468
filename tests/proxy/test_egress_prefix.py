"""An IPv6 prefix as egress, end to end: in a network namespace made for the test, with
the operator's route (`ip -6 route add local PREFIX dev lo`), a proxy node whose pool is
that prefix gives each request its own source address of it (bound with IP_FREEBIND),
and the origin sees them."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PREFIX = "2001:db8:5::/64"  # a documentation prefix, inside the namespace only
SCRIPT = Path(__file__).with_name("prefix_node.py")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def namespace(missing_service: Callable[[str, Exception], None]) -> Iterator[str]:
    if os.geteuid() != 0:
        missing_service("a network namespace", PermissionError("the test must run as root"))
    if shutil.which("ip") is None:
        missing_service("a network namespace", FileNotFoundError("apt-get install iproute2"))
    name = f"meshproxy-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "-6", "route", "add", "local", PREFIX, "dev", "lo")
        yield name
    finally:
        _ip("netns", "delete", name)


def test_a_prefix_gives_each_request_its_own_source_address(namespace: str) -> None:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, str(SCRIPT), PREFIX, "30"],
        capture_output=True, text=True, timeout=90, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    network = ipaddress.ip_network(PREFIX)
    sources = [source for source, _ in seen["plain"]]
    assert len(sources) == 30
    assert all(ipaddress.ip_address(source) in network for source in sources)
    assert len(set(sources)) >= 20  # random of 2^64: in practice 30 distinct
    # X-ProxyMesh-IP names the address each request left from.
    assert all(source == shown for source, shown in seen["plain"])
    # A connection from a drawn address is never asked for again: none is kept idle.
    assert seen["idle"] == 0
    # A sticky session keeps its address of the prefix, so its connection is kept and reused.
    assert len(set(seen["sticky"])) == 1
    assert ipaddress.ip_address(seen["sticky"][0]) in network
    assert seen["sticky_idle"] == 1
    # Tunnels leave from the prefix too.
    assert all(ipaddress.ip_address(source) in network for source in seen["tunnels"])
    assert len(set(seen["tunnels"])) == len(seen["tunnels"])
