"""What the cluster tests share: a static origin, one sub-account's fetches through a
proxy node, and waiting for the store's figures."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from bench.local import free_port

from meshproxy.store import Store
from support.polling import wait_until

BLOB = 4_000_000
SUB, SUB_PASSWORD = "pm_cluster_sub", "sub-password-1"


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("origin")
    (directory / "blob").write_bytes(b"c" * BLOB)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: accepting(port), 5, f"the origin is not listening on {port}", 0.05)
    yield port
    server.terminate()
    server.wait()


def accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


def fetch(address: tuple[str, int], origin: int, *, password: str = SUB_PASSWORD,
          source: str = "127.0.0.1") -> tuple[int, int]:
    """One GET of the blob through a proxy node: (status, every byte on the connection).
    A response cut when the account reaches its limit (the proxy resets the connection at
    charge time) still counts what arrived; one cut before its status line is status 0."""
    token = base64.b64encode(f"{SUB}:{password}".encode()).decode()
    request = (f"GET http://127.0.0.1:{origin}/blob HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Proxy-Authorization: Basic {token}\r\nConnection: close\r\n\r\n").encode()
    received = b""
    with socket.create_connection(address, timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(request)
        try:
            while piece := sock.recv(1 << 20):
                received += piece
        except ConnectionResetError:
            pass
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/") else 0
    return status, len(request) + len(received)


def usage(store: Store, username: str) -> tuple[int, int]:
    record = store.accounts.get(username)
    assert record is not None
    return store.usage.of(record, datetime.now(UTC))


def settled(store: Store, username: str, expected: int, seconds: float = 10.0) -> None:
    """Proxies flush every 0.25 s and nodes fold every second: wait for the figure."""
    wait_until(lambda: usage(store, username)[1] >= expected, seconds)
    time.sleep(1.5)  # one more fold: nothing beyond the expected bytes may arrive
    assert usage(store, username) == (expected, expected)
