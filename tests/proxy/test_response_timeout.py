"""The response timeout (504) fires at its deadline, each request on its own clock.

The node's sweep runs every 2 s here (`quota_check_interval`, its largest value): a
deadline within two sweeps gets its timer when the request is admitted, a later one from
the sweep before it is due; either way the 504 comes at the deadline, not at a sweep.
Origins: the raw origin's /hang accepts the request and never answers; aiohttp's
/slow/{seconds} answers after that many seconds.
"""

from __future__ import annotations

import gc
import http.client
import time
from collections.abc import Callable

import pytest

from meshproxy.proxy.exchange import Exchange

from .clients import basic, curl
from .conftest import Env

TIMEOUT = 0.5
SWEEP = 2.0
LATE = 0.4  # generous: the timer fires within milliseconds of its deadline


def _env(start_env: Callable[..., Env], **behaviour: float) -> Env:
    env = start_env(quota_check_interval=SWEEP, **behaviour)
    env.account("alice")
    env.sync()
    return env


@pytest.mark.parametrize("timeout", [TIMEOUT, 2 * SWEEP + 0.5], ids=["admitted", "swept"])
def test_an_origin_that_never_answers_gets_504_at_the_deadline(
    start_env: Callable[..., Env], timeout: float
) -> None:
    env = _env(start_env, upstream_timeout=timeout)
    result = curl(
        "-i", "-w", "\n%{time_total}", "-x", env.proxy_url(), env.origins.raw_url("/hang"),
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    head, _, rest = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 504 ")
    assert b"timed out" in head
    elapsed = float(rest.rsplit(b"\n", 1)[1])
    assert timeout <= elapsed <= timeout + LATE, elapsed


def test_each_request_on_a_keep_alive_connection_gets_its_own_full_timeout(
    start_env: Callable[..., Env],
) -> None:
    """Three answers 0.35 s late (1.05 s in all) under a 0.5 s X-ProxyMesh-Timeout are not
    cut; the fourth request, to an origin that never answers, gets 504 0.5 s after it
    was sent, not after the connection or its first request started."""
    env = _env(start_env)
    host, port = env.address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Proxy-Authorization": basic(), "X-ProxyMesh-Timeout": str(TIMEOUT)}
    sockets = set()
    try:
        for _ in range(3):
            connection.request("GET", env.origins.url("/slow/0.35"), headers=headers)
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
    assert TIMEOUT <= elapsed <= TIMEOUT + LATE, elapsed


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
    deadline = time.monotonic() + 5
    while env.node.services.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not env.node.services.connections
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, Exchange)]
