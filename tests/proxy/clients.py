"""Small client helpers shared by the end-to-end tests."""

from __future__ import annotations

import base64
import socket
import subprocess
from dataclasses import dataclass


def basic(user: str = "alice", password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--noproxy", "", *args], capture_output=True, timeout=timeout, check=False
    )


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names; repeated names keep the last
    body: bytes
    raw_head: bytes


_leftovers: dict[int, bytes] = {}


def read_reply(sock: socket.socket, *, head_only: bool = False, timeout: float = 10) -> Reply:
    """One response from a raw socket (Content-Length or close-delimited bodies). Bytes
    past its end are kept for the next call on the same socket (pipelined responses)."""
    sock.settimeout(timeout)
    data = _leftovers.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            raise ConnectionError(f"closed before a full head: {data!r}")
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode().lower()] = value.decode().strip()
    if head_only:
        _leftovers[sock.fileno()] = rest
        return Reply(status, headers, b"", head)
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            piece = sock.recv(65536)
            if not piece:
                break
            rest += piece
        if rest[length:]:
            _leftovers[sock.fileno()] = rest[length:]
        return Reply(status, headers, rest[:length], head)
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        rest += piece
    return Reply(status, headers, rest, head)


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    _leftovers.pop(sock.fileno(), None)
    return sock


def is_closed(sock: socket.socket, timeout: float = 3.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
