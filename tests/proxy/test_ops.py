"""Health and metrics of a proxy node, and the node riding out a store outage: it keeps
serving from memory, says so in /readyz and /metrics, and loses no usage."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import struct
from collections.abc import Iterator

import httpx
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.store.engine import make_engine
from mutations import ACTIONS, mutations

from .conftest import Env
from .test_metering import close_to, curl_bytes

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/none"


@pytest.fixture
def admin(env: Env) -> Iterator[str]:
    status = NodeStatus(store=env.store, api=False, proxy_node=env.node)

    async def start() -> AdminServer:
        server = AdminServer(status, "127.0.0.1", 0)
        await server.start()
        return server

    server = env.thread.run(start())
    yield f"http://127.0.0.1:{server.port}"
    env.thread.run(server.stop())


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, (name, text)
    return float(found.group(1))


def test_metrics_count_requests_bytes_and_failures_by_proxy(env: Env, admin: str) -> None:
    moved = curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/10000"))
    assert requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url("world")},
                        timeout=10).status_code == 200
    bad = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url(password="x")},
                       timeout=10)
    assert bad.status_code == 407
    text = httpx.get(f"{admin}/metrics").text
    assert metric(text, 'meshproxy_proxy_requests_total{proxy="open"}') == 1
    assert metric(text, 'meshproxy_proxy_requests_total{proxy="world"}') == 1
    assert metric(text, 'meshproxy_proxy_bytes_total{proxy="open"}') == moved
    assert metric(text, "meshproxy_auth_failures_total") == 1
    assert metric(text, "meshproxy_auth_verifications") == 0  # every check finished
    assert metric(text, "meshproxy_auth_verifications_refused_total") == 0
    assert metric(text, 'meshproxy_proxy_active_connections{proxy="private"}') == 0
    assert metric(text, "meshproxy_accounts_loaded") == 1
    assert 'meshproxy_backend_up{backend="the store (usage)"} 1.0' in text
    assert httpx.get(f"{admin}/healthz").json()["alive"] is True
    ready = httpx.get(f"{admin}/readyz")
    assert ready.status_code == 200 and ready.json()["degraded"] is False
    assert httpx.get(f"{admin}/nothing").status_code == 404
    assert httpx.post(f"{admin}/metrics").status_code == 405


def test_a_store_outage_is_ridden_out_and_no_usage_is_lost(env: Env, admin: str) -> None:
    working = env.store.engine
    env.store.engine = make_engine(UNREACHABLE)
    try:
        moved = sum(curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/200000"))
                    for _ in range(3))
        with pytest.raises(Exception):  # noqa: B017 - the store's own error
            env.flush()
        env.sync()  # the change feed is down too: logged, not raised
        ready = httpx.get(f"{admin}/readyz")
        assert ready.status_code == 200 and ready.json()["degraded"] is True
        text = httpx.get(f"{admin}/metrics").text
        assert 'meshproxy_backend_up{backend="the store (usage)"} 0.0' in text
        assert metric(text, "meshproxy_usage_unflushed_bytes") == moved
        moved += curl_bytes("-x", env.proxy_url(), env.origins.url("/bytes/1000"))  # serving
    finally:
        env.store.engine.dispose()
        env.store.engine = working
    env.flush()
    _, total = env.usage("alice")
    assert close_to(moved, total), (moved, total)  # every byte from the outage
    text = httpx.get(f"{admin}/metrics").text
    assert 'meshproxy_backend_up{backend="the store (usage)"} 1.0' in text


def exchange(admin_url: str, data: bytes, *, close_write: bool = True) -> bytes:
    """Send raw bytes to the admin listener; everything it answers before closing."""
    host, port = admin_url.removeprefix("http://").rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            if close_write:
                sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while piece := sock.recv(65536):
                received += piece
    return received


def still_answers(admin_url: str, caplog: pytest.LogCaptureFixture) -> None:
    assert httpx.get(f"{admin_url}/healthz").json()["alive"] is True
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, [r.getMessage() for r in failures]


@pytest.mark.parametrize(
    ("data", "answer"),
    [
        (b"", b""),  # a load balancer's TCP check: connect, close; nothing to answer
        (b"garbage\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /healthz", b"HTTP/1.1 400 Bad Request\r\n"),  # closed mid-head
        (b"GET /healthz HTTP/1.1\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET  /healthz HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET healthz HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /healthz SPDY/3\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /h\xffz HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
        (b"BREW /healthz HTTP/1.1\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed\r\n"),
        (b"GET /healthz HTTP/1.0\r\n\r\n", b"HTTP/1.1 200 OK\r\n"),
    ],
)
def test_the_admin_listener_answers_any_bytes_or_closes_cleanly(
    admin: str, caplog: pytest.LogCaptureFixture, data: bytes, answer: bytes
) -> None:
    received = exchange(admin, data)
    assert received.startswith(answer) and (answer or received == b""), received[:200]
    still_answers(admin, caplog)


def test_a_head_not_complete_in_time_gets_400(
    admin: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that sends part of a head and waits (the connection held open) is answered
    400 once the head timeout (5 s; here 0.2 s) has passed, not held forever."""
    monkeypatch.setattr("meshproxy.ops.admin.HEAD_TIMEOUT", 0.2)
    received = exchange(admin, b"GET /healthz HTTP/1.1\r\n", close_write=False)
    assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n"), received[:200]
    still_answers(admin, caplog)


def test_a_head_request_gets_the_headers_only(admin: str) -> None:
    received = exchange(admin, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 0" not in head
    assert body == b""


def test_a_connection_reset_before_the_request_is_no_error(
    admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = admin.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(b"GET /metr")
    sock.close()  # RST
    still_answers(admin, caplog)


ADMIN_REQUESTS = [
    b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /readyz?verbose=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe\r\n\r\n",
    b"HEAD /metrics HTTP/1.0\r\n\r\n",
]
ADMIN_TOKENS = [b"\r\n", b"\r", b"\n", b" ", b"\t", b"\x00", b"\xff", b"\r\n\r\n", b"?", b"/",
                b"HTTP/1.1", b"GET ", b"%", b"\xc3\xa9"]


def mutated_admin_requests() -> st.SearchStrategy[bytes]:
    return mutations(ADMIN_REQUESTS, ADMIN_TOKENS, (*ACTIONS, "cut"))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.one_of(mutated_admin_requests(), st.binary(max_size=300)))
def test_fuzzed_requests_get_a_status_line_or_a_clean_close(
    admin: str, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    received = exchange(admin, data)
    assert received == b"" or re.match(rb"HTTP/1\.1 [2-5]\d\d ", received), received[:200]
    if received == b"":
        assert data == b""  # only a connection that sent nothing goes unanswered
    status = int(received[9:12]) if received else 0
    assert status != 500, received
    still_answers(admin, caplog)
