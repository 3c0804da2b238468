"""The connection owns the tasks it starts: a connection the proxy drops while its upstream
is still connecting (here: its account deactivated, so the sweep aborts it) takes the
connect with it, instead of leaving it to run to the connect timeout.

The origin is a listener whose accept queue is full, so a connect to it hangs (Linux
drops the SYN) until `connect_timeout` (10 s)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import types
from collections.abc import Iterator

import pytest

from support.polling import wait_until

from .clients import basic, connect
from .conftest import Env
from .listeners import socks_env, start_listeners

__all__ = ["socks_env", "start_listeners"]  # fixtures


@pytest.fixture
def full_listener() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):  # more than the queue holds: later SYNs are dropped
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


def _function_name(coroutine: object) -> str:
    """The function a task runs: a coroutine's own name, or a compiled one's (mypyc makes a
    class `<function>_<Class>_gen` for each coroutine method)."""
    if isinstance(coroutine, types.CoroutineType):
        return coroutine.__qualname__.rsplit(".", 1)[-1]
    compiled = re.fullmatch(r"(\w+?)_[A-Z]\w*_gen", type(coroutine).__name__)
    return compiled[1] if compiled else ""


def _connecting(env: Env) -> int:
    async def count() -> int:
        names = ("open", "_open_tunnel", "_connect", "_resolve")  # (ConnectTunnel.open)
        coroutines = (task.get_coro() for task in asyncio.all_tasks())
        return sum(1 for coroutine in coroutines if _function_name(coroutine) in names)
    return env.thread.run(count())


def _deactivate_while_connecting(env: Env) -> None:
    """Once the proxy's connect is under way, deactivate the account: the next sweep
    (every 0.25 s) aborts the connection, and its connect must go with it."""
    wait_until(lambda: _connecting(env), 5, "no connect under way", 0.05)
    env.store.accounts.update("alice", active=False)
    env.sync()
    wait_until(lambda: not _connecting(env), 3, "the connect outlived its connection", 0.05)


@pytest.mark.parametrize("method", ["CONNECT", "GET"])
def test_a_dropped_connection_takes_its_pending_connect_with_it(
    env: Env, full_listener: int, method: str
) -> None:
    target = f"127.0.0.1:{full_listener}"
    line = f"CONNECT {target}" if method == "CONNECT" else f"GET http://{target}/"
    with connect(env.address("world")) as sock:
        sock.sendall(f"{line} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {basic()}"
                     "\r\n\r\n".encode())
        _deactivate_while_connecting(env)


def test_an_aborted_socks_connection_takes_its_pending_connect_with_it(
    socks_env: Env, full_listener: int
) -> None:
    """The SOCKS5 listener owns its tasks too: a connection the sweep aborts while its
    connect hangs (its account deactivated meanwhile) leaves no task behind (it ran on to
    the 10 s connect timeout before, and the sweep did not look at a connecting client)."""
    env = socks_env
    with socket.create_connection(env.node.socks_addresses["world"], timeout=5) as sock:
        sock.sendall(b"\x05\x01\x02")
        assert sock.recv(2) == b"\x05\x02"
        sock.sendall(b"\x01\x05alice\x02pw")
        assert sock.recv(2) == b"\x01\x00"
        sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1")
                     + struct.pack("!H", full_listener))
        _deactivate_while_connecting(env)
        try:
            end = sock.recv(10)
        except ConnectionResetError:
            end = b""
        assert end == b""  # aborted without a reply
