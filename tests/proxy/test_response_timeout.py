"""The response timeout (504) fires at its deadline, each request on its own clock, which
starts when the request is complete (an upload may take longer) and again after an interim
head (the final head gets a full timeout of its own).

The node's sweep runs every 2 s here (`quota_check_interval`, its largest value): a
deadline within two sweeps gets its timer when the request is admitted, a later one from
the sweep before it is due; either way the 504 comes at the deadline, not at a sweep.
Origins: the raw origin's /hang accepts the request and never answers, its /late-continue
sends 100 Continue after 0.4 s and then nothing; aiohttp's /slow/{seconds} answers after
that many seconds, its /upload as soon as it has read the whole body.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import pytest
import requests

from meshproxy.config import Settings
from meshproxy.meter import LocalMeter, NoSharedCounters
from meshproxy.proxy.server.exchange import Exchange
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store
from support.polling import wait_until

from .clients import basic, connect, curl, read_reply
from .conftest import Env, LoopThread, Origins, echo_json, proxy_settings

TIMEOUT = 0.5
SWEEP = 2.0
LATE = 0.4  # generous: the timer fires within milliseconds of its deadline
EARLY = 0.01  # libuv's timers count whole milliseconds: one may fire a little before


def _at(deadline: float, elapsed: float) -> bool:
    return deadline - EARLY <= elapsed <= deadline + LATE


def _env(start_env: Callable[..., Env], **behaviour: float) -> Env:
    """A node (sweeping every 2 s unless told) with alice's credentials already verified:
    the first request with them runs an argon2 check (0.1 s idle, several times that on
    a loaded machine), which a timed request must not include."""
    env = start_env(**{"quota_check_interval": SWEEP, **behaviour})
    env.account("alice")
    env.sync()
    warm = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()}, timeout=10)
    assert warm.status_code == 200
    return env


@pytest.mark.parametrize("timeout", [TIMEOUT, 2 * SWEEP + 0.5], ids=["admitted", "swept"])
def test_an_origin_that_never_answers_gets_504_at_the_deadline(
    start_env: Callable[..., Env], timeout: float
) -> None:
    assert_504_at(_env(start_env, upstream_timeout=timeout), timeout)


def assert_504_at(env: Env, timeout: float) -> None:
    """curl through `env` to an origin that never answers gets 504 at `timeout`."""
    result = curl(
        "-i", "-w", "\n%{time_total}", "-x", env.proxy_url(), env.origins.raw_url("/hang"),
        timeout=timeout + 10,
    )
    assert result.returncode == 0, result.stderr
    head, _, rest = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504 ")
    assert b"timed out" in head
    elapsed = float(rest.rsplit(b"\n", 1)[1])
    assert _at(timeout, elapsed), elapsed


def test_each_request_on_a_keep_alive_connection_gets_its_own_full_timeout(
    start_env: Callable[..., Env],
) -> None:
    """Three answers 0.5 s late (1.5 s in all) under a 1 s X-ProxyMesh-Timeout are not
    cut; the fourth request, to an origin that never answers, gets 504 1 s after it was
    sent, not after the connection or its first request started."""
    env = _env(start_env)
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    timeout = 2 * TIMEOUT  # half of it to spare on each late answer
    headers = {"Proxy-Authorization": basic(), "X-ProxyMesh-Timeout": str(timeout)}
    sockets = set()
    try:
        for _ in range(3):
            connection.request("GET", env.origins.url("/slow/0.5"), headers=headers)
            response = connection.getresponse()
            assert response.status == 200
            assert response.read() == b"slow done"
            sockets.add(id(connection.sock))
        started = time.monotonic()
        connection.request("GET", env.origins.raw_url("/hang"), headers=headers)
        sockets.add(id(connection.sock))
        response = connection.getresponse()  # closes the socket after a 504 (Connection: close)
        elapsed = time.monotonic() - started
        assert response.status == 504
        assert "timed out" in response.getheader("X-ProxyMesh-Error", "")
        response.read()
    finally:
        connection.close()
    assert len(sockets) == 1  # one client connection throughout
    assert _at(timeout, elapsed), elapsed


def test_answered_exchanges_leave_no_timer_behind(start_env: Callable[..., Env]) -> None:
    """A timer cancelled when the response starts lets its exchange go at once; one left
    to run out would hold each exchange (and its connection) until its deadline."""
    env = _env(start_env)
    # One curl, one keep-alive connection, 20 requests; curl's exit closes the connection.
    each = ("-o", "/dev/null", env.origins.url("/echo"))
    result = curl("-x", env.proxy_url(), "-H", "X-ProxyMesh-Timeout: 3", "-w", "%{http_code}\n",
                  *each * 20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"200"] * 20
    wait_until(lambda: not env.node.services.connections, 5, "a connection outlived curl")
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Exchange)]


PIECE, PIECES = b"u" * 4096, 15  # one piece every 0.1 s: 1.5 s of upload, 40 kB/s


def _slowly() -> Iterator[bytes]:
    for _ in range(PIECES):
        time.sleep(0.1)
        yield PIECE


def test_an_upload_longer_than_the_timeout_is_not_cut_then_the_next_request_is_timed(
    start_env: Callable[..., Env],
) -> None:
    """A 1.5 s upload under a 0.5 s response timeout: the origin answers as soon as it has
    the body, so the answer comes. On the same connection the next request, to an origin
    that never answers, gets its 504 0.5 s after it was sent."""
    env = _env(start_env, upstream_timeout=TIMEOUT)
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    auth = {"Proxy-Authorization": basic()}
    try:
        started = time.monotonic()
        connection.request(
            "POST", env.origins.url("/upload"), body=_slowly(),
            headers={**auth, "Content-Length": str(len(PIECE) * PIECES)},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert echo_json(response.read()) == {"received": len(PIECE) * PIECES, "chunked": False}
        assert time.monotonic() - started >= 1.5  # the upload did outlast the timeout
        sock = connection.sock
        started = time.monotonic()
        connection.request("GET", env.origins.raw_url("/hang"), headers=auth)
        assert connection.sock is sock  # the same client connection
        response = connection.getresponse()
        elapsed = time.monotonic() - started
        assert response.status == 504
        response.read()
    finally:
        connection.close()
    assert _at(TIMEOUT, elapsed), elapsed


def test_a_chunked_upload_longer_than_the_timeout_is_not_cut(
    start_env: Callable[..., Env],
) -> None:
    env = _env(start_env, upstream_timeout=TIMEOUT)
    proxy = env.proxy_url()
    response = requests.post(
        env.origins.url("/upload"), data=_slowly(), proxies={"http": proxy}, timeout=10
    )
    assert response.status_code == 200
    assert response.json() == {"received": len(PIECE) * PIECES, "chunked": True}


def test_an_origin_silent_after_100_continue_gets_504_a_full_timeout_after_it(
    start_env: Callable[..., Env],
) -> None:
    """The 100 comes 0.4 s after the request, then nothing: the client gets the 100 and,
    0.5 s later, a final 504 on the same response stream (not a hang, not a cut)."""
    env = _env(start_env, upstream_timeout=TIMEOUT)
    result = curl(
        "-i", "-w", "\n%{time_total}", "-x", env.proxy_url(), "--data-binary", "x" * 100,
        env.origins.raw_url("/late-continue"), timeout=10,
    )
    assert result.returncode == 0, result.stderr
    interim, _, rest = result.stdout.partition(b"\r\n\r\n")
    assert interim.startswith(b"HTTP/1.1 100 ")
    final, _, rest = rest.partition(b"\r\n\r\n")
    assert final.startswith(b"HTTP/1.1 504 ")
    assert b"timed out" in final
    elapsed = float(rest.rsplit(b"\n", 1)[1])
    assert _at(0.4 + TIMEOUT, elapsed), elapsed


def test_a_client_waiting_for_100_continue_from_a_silent_origin_gets_504(
    start_env: Callable[..., Env],
) -> None:
    """Expect: 100-continue, and the client waits for the 100 before sending its body: the
    origin's silence counts from when the request head went to it, so the client gets 504
    at the response timeout, not the cut of a body that stopped coming (header_timeout,
    shorter here and checked by a sweep every 0.25 s)."""
    timeout = 2 * TIMEOUT
    env = _env(start_env, upstream_timeout=timeout, header_timeout=TIMEOUT,
               quota_check_interval=0.25)
    with connect(env.address()) as sock:
        started = time.monotonic()
        sock.sendall(
            f"POST {env.origins.raw_url('/hang')} HTTP/1.1\r\nHost: x\r\n"
            f"Proxy-Authorization: {basic()}\r\nExpect: 100-continue\r\n"
            "Content-Length: 100\r\n\r\n".encode()
        )
        reply = read_reply(sock)
        elapsed = time.monotonic() - started
    assert reply.status == 504, reply.raw_head
    assert "timed out" in reply.headers["x-proxymesh-error"]
    assert _at(timeout, elapsed), elapsed


def test_an_origin_that_stops_taking_the_body_gets_504(
    start_env: Callable[..., Env], tmp_path: Path
) -> None:
    """/hang reads the head and nothing more: once every buffer on the way is full the
    proxy stops reading the client, and the response timeout counts from then (checked by
    the sweep, here every 0.25 s)."""
    env = start_env(upstream_timeout=TIMEOUT, quota_check_interval=0.25)
    env.account("alice")
    env.sync()
    body = tmp_path / "body"
    body.write_bytes(b"b" * (64 << 20))  # more than the socket buffers on the way hold
    result = curl(
        "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", env.proxy_url(),
        "-H", "Expect:", "--data-binary", f"@{body}", env.origins.raw_url("/hang"), timeout=20,
    )
    assert result.stdout == b"504", (result.stdout, result.stderr)


class HungSharedCounters(LocalMeter, NoSharedCounters):
    """Usage goes to the store as usual; once `hung`, a read of the shared counters never
    answers (a hung Redis)."""

    hung = False

    async def refresh_shared(self, account_ids: Collection[int]) -> None:
        if self.hung:
            await asyncio.Event().wait()


def test_a_hung_shared_counter_read_does_not_delay_the_504(
    make_settings: Callable[..., Settings], store: Store, proxy_thread: LoopThread,
    origins: Origins,
) -> None:
    """The sweep reads the shared counters of limited accounts with open connections
    before checking the connections; a read that hangs must not hold back the checks
    (which arm the timer of a deadline two sweeps away)."""
    timeout = 2 * SWEEP + 0.5
    settings = proxy_settings(make_settings, quota_check_interval=SWEEP,
                              upstream_timeout=timeout)
    meter = HungSharedCounters(store.usage)
    node = ProxyNode(settings, store, meter=meter)
    proxy_thread.run(node.start())
    try:
        env = Env(node, store, proxy_thread, origins)
        env.account("alice", monthly_limit_gb=1)  # limited: the sweep reads its counters
        env.sync()
        warm = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()},
                            timeout=10)
        assert warm.status_code == 200
        meter.hung = True
        assert_504_at(env, timeout)
    finally:
        proxy_thread.run(node.stop(1.0))
