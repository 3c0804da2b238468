"""Raw-socket helpers: send bytes from a chosen loopback source, read one answer or a close,
and check that the node has let go of every connection afterwards."""

from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass
from itertools import count

from proxy.clients import is_closed, read_reply
from support.polling import wait_until
from support.proxy_env import Env

_sources = count(1)


def fresh_source() -> str:
    """A loopback source address of its own (127.3.x.y): failed logins from it ban no one
    else."""
    n = next(_sources) % 62_500  # long fuzz runs wrap around; a reused address may be banned
    return f"127.3.{n // 250}.{n % 250 + 1}"


def basic_raw(credentials: bytes) -> bytes:
    return b"Basic " + base64.b64encode(credentials)


def open_from(address: tuple[str, int], source: str = "127.0.0.1",
              timeout: float = 10) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(address)
    return sock


@dataclass
class Outcome:
    status: int | None  # None: closed without an answer
    closed: bool
    head: bytes
    body: bytes


def exchange(address: tuple[str, int], data: bytes, source: str = "127.0.0.1",
             timeout: float = 5) -> Outcome:
    """Send `data`, read one answer (or the close), then see whether the proxy closes."""
    with open_from(address, source, timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return Outcome(None, True, b"", b"")
        try:
            reply = read_reply(sock, timeout=timeout)
        except (ConnectionError, TimeoutError) as error:
            if isinstance(error, TimeoutError):
                return Outcome(None, False, b"", b"")
            return Outcome(None, True, b"", b"")
        closed = "close" in reply.headers.get("connection", "") and is_closed(sock, timeout)
        if not closed:
            closed = is_closed(sock, 0.1)
        return Outcome(reply.status, closed, reply.raw_head, reply.body)


def settle(env: Env, within: float = 3.0) -> None:
    """The node holds no client connection any more (nothing leaked)."""
    connections = env.node.services.connections
    wait_until(lambda: not connections, within, f"connections left open: {len(connections)}")


def own_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
