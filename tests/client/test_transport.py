"""Retries over real HTTP, against a tiny loopback server scripted to fail then succeed;
and the client's independence from the server code."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from meshproxy.client import (
    AsyncClient,
    Client,
    NetworkError,
    PlanUnavailable,
    RetryPolicy,
    ServerError,
)

FAST = RetryPolicy(retries=3, backoff=0.01, max_delay=1.0)
SERVED = {"proxies": ["open.example:31280"]}


class Script:
    """What the server answers, request after request: a status, or "drop" (close without
    answering); then 200 with SERVED. Records every request line."""

    def __init__(self) -> None:
        self.plan: list[int | str] = []
        self.seen: list[str] = []


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.seen_line()
            step = script.plan.pop(0) if script.plan else 200
            if step == "drop":
                self.close_connection = True
                return
            body = json.dumps(SERVED if step == 200 else {"error": "scripted"}).encode()
            self.send_response(int(step))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if step == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)

        def seen_line(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            script.seen.append(f"{self.command} {self.path}")

        do_GET = do_POST = _answer  # noqa: N815 (http.server names)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def flaky() -> Iterator[tuple[str, Script]]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script
    server.shutdown()
    server.server_close()


def test_get_retries_500_503_and_dropped_connections_then_succeeds(
    flaky: tuple[str, Script],
) -> None:
    url, script = flaky
    script.plan = [500, "drop", 503]
    with Client(url, "u", "p", retry=FAST) as client:
        assert client.proxies() == SERVED["proxies"]
    assert script.seen == ["GET /api/proxies/"] * 4


async def test_async_client_retries_the_same_way(flaky: tuple[str, Script]) -> None:
    url, script = flaky
    script.plan = [503, 500]
    async with AsyncClient(url, "u", "p", retry=FAST) as client:
        assert await client.proxies() == SERVED["proxies"]
    assert len(script.seen) == 3


def test_retries_stop_at_the_policy_bound(flaky: tuple[str, Script]) -> None:
    url, script = flaky
    script.plan = [503] * 10
    with Client(url, "u", "p", retry=FAST) as client, pytest.raises(PlanUnavailable):
        client.list_ips()
    assert len(script.seen) == 1 + FAST.retries


def test_post_is_sent_once(flaky: tuple[str, Script]) -> None:
    url, script = flaky
    script.plan = [500, "drop"]
    with Client(url, "u", "p", retry=FAST) as client:
        with pytest.raises(ServerError):
            client.add_proxy("open")
        with pytest.raises(NetworkError):
            client.add_ip("10.0.0.1")
    assert script.seen == ["POST /api/proxy/add/", "POST /api/ip/add/"]


def test_client_imports_nothing_of_the_server() -> None:
    probe = (
        "import sys, meshproxy.client, meshproxy.client.report; "
        "print(sorted(m for m in sys.modules if m.startswith('meshproxy.') "
        "and not m.startswith('meshproxy.client')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
    for heavy in ("starlette", "sqlalchemy", "meshproxy.config"):
        check = f"import sys, meshproxy.client; assert {heavy!r} not in sys.modules"
        subprocess.run([sys.executable, "-c", check], check=True, timeout=60)
