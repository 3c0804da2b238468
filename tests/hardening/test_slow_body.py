"""The minimum-rate rule for request bodies (proxy.body_timeout, proxy.body_min_rate): a body
dripped a byte at a time is cut off with 408 even though bytes keep coming; an upload at a
sane rate that lasts longer than body_timeout goes through; time the proxy spends not
reading (an origin that is slow to take the body) is not charged to the client."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from proxy.clients import read_reply
from support.proxy_env import LoopThread, echo_json

from .conftest import Env
from .raw import open_from, settle
from .test_proxy_input import AUTH


def _post_head(url: str, length: int) -> bytes:
    return (b"POST " + url.encode() + b" HTTP/1.1\r\nHost: x\r\n" + AUTH
            + b"Content-Length: %d\r\n\r\n" % length)


def test_a_body_dripped_byte_by_byte_is_cut_off(start_env: Callable[..., Env]) -> None:
    env = start_env(body_timeout=1.0, body_min_rate=500, quota_check_interval=0.1)
    env.account("alice")
    env.sync()
    with open_from(env.address()) as sock:
        sock.sendall(_post_head(env.origins.url("/upload"), 10_000))
        started = time.monotonic()
        sock.settimeout(0.02)
        answer = b""
        for _ in range(500):  # 20 bytes a second: far under the minimum rate
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(4096)
                if answer:
                    break
            except TimeoutError:
                pass
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert time.monotonic() - started < 3
    settle(env)


def test_a_long_upload_at_a_sane_rate_goes_through(start_env: Callable[..., Env]) -> None:
    """Longer than body_timeout in total, but well over the minimum rate."""
    env = start_env(body_timeout=1.0, body_min_rate=500, quota_check_interval=0.1)
    env.account("alice")
    env.sync()
    piece, pieces = b"u" * 16_384, 25
    with open_from(env.address()) as sock:
        sock.sendall(_post_head(env.origins.url("/upload"), len(piece) * pieces))
        for _ in range(pieces):  # about 2.5 s, 160 kB/s
            sock.sendall(piece)
            time.sleep(0.1)
        reply = read_reply(sock)
    assert reply.status == 200
    assert echo_json(reply.body)["received"] == len(piece) * pieces
    settle(env)


def test_an_origin_slow_to_read_the_body_is_not_the_clients_fault(
    start_env: Callable[..., Env], origin_thread: LoopThread
) -> None:
    """The origin takes nothing for 2 s (the proxy stops reading the client meanwhile);
    body_timeout and header_timeout are 1 s and the minimum rate is absurdly high, so only
    the client's own time counts."""
    size = 48 << 20  # more than every socket buffer on the way holds

    async def sleepy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(2.0)
            await reader.readexactly(size)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = origin_thread.run(asyncio.start_server(sleepy, "127.0.0.1", 0))
    try:
        port = server.sockets[0].getsockname()[1]
        env = start_env(body_timeout=1.0, body_min_rate=1e9, header_timeout=1.0,
                        quota_check_interval=0.1)
        env.account("alice")
        env.sync()
        with open_from(env.address(), timeout=15) as sock:
            sock.sendall(_post_head(f"http://127.0.0.1:{port}/", size))
            sender = threading.Thread(target=sock.sendall, args=(b"b" * size,), daemon=True)
            sender.start()
            reply = read_reply(sock, timeout=15)
            sender.join(15)
        assert reply.status == 200 and reply.body == b"done"
        settle(env)
    finally:
        server.close()
