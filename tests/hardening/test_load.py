"""Load, soak and slow readers against a `meshproxy proxy` subprocess, reading its memory and
descriptors from /proc. Smaller than the documented runs (docs/reliability.md):
    .venv/bin/python -m bench.hardening tunnels --count 10000
    .venv/bin/python -m bench.hardening soak --seconds 600
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import pytest
import uvloop
from bench.hardening import (
    Counter,
    Node,
    credentials,
    echo_through,
    hold_tunnels,
    open_tunnel,
    soak,
)
from bench.hardening import Origins as LoadOrigins

from meshproxy.proxy.server.upstream import MAX_IDLE_PER_KEY
from support.polling import eventually, eventually_async, wait_until_async

pytestmark = pytest.mark.slow  # soak, cluster or SIGKILL: `make test-fast` leaves it out

MIB = 1024  # in kB, the unit of /proc/<pid>/status


@runtime_checkable
class ReadPausable(Protocol):
    """A transport that reads (uvloop's TCPTransport is not an asyncio.Transport, so an
    isinstance of that would fail; a StreamWriter's is typed as write-only)."""

    def pause_reading(self) -> None: ...


def test_a_thousand_tunnels_held_by_a_node_started_with_1024_descriptors(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    node = node_process(fd_soft_limit=1024, flush_interval=0.5)
    result = uvloop.run(hold_tunnels(node, load_origins, 1000))
    assert result["node_fd_soft_limit"] > 1024  # the node raised its own limit
    assert result["node_fds_held"] >= result["node_fds_before"] + 2000
    assert result["node_fds_after"] <= result["node_fds_before"] + 2  # all released
    assert result["kib_per_tunnel"] < 20
    assert eventually(lambda: node.usage() == result["bytes_moved"], 5), (
        node.usage(), result["bytes_moved"])  # every tunnelled byte counted, none twice
    assert node.stop() == 0


def test_soak_keeps_memory_and_descriptors_flat_and_loses_no_usage(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    node = node_process(flush_interval=1.0)
    result = uvloop.run(soak(node, load_origins, 30, concurrency=16, sample_every=1.0))
    assert result["errors"] == []
    assert result["requests"] > 500 and result["tunnels"] > 50
    assert result["abusive_refused"] > 50
    assert result["rss_kib_max_after_warm"] - result["rss_kib_warm"] < 24 * MIB, result
    # Back to the start but for idle pooled upstream connections: per egress and origin, no
    # more than the pool keeps and no more than were ever in use at once (16 clients).
    pooled = 2 * min(MAX_IDLE_PER_KEY, 16)
    assert result["fds_after"] <= result["fds_before"] + 2 + pooled, result
    # At the peak each of the 16 clients may hold a spliced tunnel: its two sockets and two
    # pipes (six descriptors), until it closes.
    assert result["fds_max"] <= result["fds_before"] + 6 * 16 + pooled + 8, result
    assert result["bytes_recorded"] == result["bytes_moved"]  # zero bytes lost
    assert node.stop() == 0


async def _never_read(node: Node, origins: LoadOrigins, count: int) -> list[asyncio.StreamWriter]:
    """`count` clients asking for 1 GB each (half plain, half through a tunnel), reading
    nothing."""
    writers = []
    for index in range(count):
        reader, writer = await asyncio.open_connection(*node.address)
        get = b"GET http://127.0.0.1:%d/bytes/1000000000 HTTP/1.1\r\nHost: x\r\n" % origins.http
        if index % 2:
            writer.write(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n%s\r\n"
                         % (origins.http, credentials()))
            await reader.readuntil(b"\r\n\r\n")
            writer.write(get + b"\r\n")
        else:
            writer.write(get + credentials() + b"\r\n")
        transport = writer.transport
        assert isinstance(transport, ReadPausable)
        transport.pause_reading()  # and never read again
        writers.append(writer)
    return writers


def test_clients_that_never_read_do_not_grow_the_node(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    node = node_process()
    baseline_fds = node.fds()

    async def scenario() -> tuple[int, int, int, bool]:
        before = node.rss_kib()
        writers = await _never_read(node, load_origins, 20)
        rss: list[int] = []

        def settled() -> bool:  # the node's memory still for the last second (10 polls)
            rss.append(node.rss_kib())
            return len(rss) > 10 and max(rss[-11:]) - min(rss[-11:]) < MIB

        await wait_until_async(settled, 15, interval=0.1)
        first = rss[-1]
        # No growth while they wait: watched for 3 s.
        grew = await eventually_async(lambda: node.rss_kib() - first >= 4 * MIB, 3, 0.1)
        second = node.rss_kib()
        for writer in writers:
            writer.transport.abort()
        return before, first, second, grew

    before, first, second, grew = uvloop.run(scenario())
    # 20 responses of 1 GB held back: socket buffers and one high-water mark each at most.
    assert first - before < 64 * MIB, (before, first)
    assert not grew, (first, second)  # and no growth while they wait
    assert eventually(lambda: node.fds() <= baseline_fds + 2, 5), node.fds()
    assert node.stop() == 0


def test_at_the_descriptor_limit_the_node_refuses_cleanly_and_recovers(
    node_process: Callable[..., Node], load_origins: LoadOrigins
) -> None:
    """A node whose hard limit is 200 descriptors: tunnels past it are refused (502) or
    their connection dropped, never hung; once they close, the node serves again."""
    node = node_process(fd_hard_limit=200)

    async def scenario() -> tuple[int, int, int]:
        counter = Counter()
        held, refused = [], 0
        for _ in range(150):
            try:
                pair = await asyncio.wait_for(
                    open_tunnel(node.address, load_origins.echo, counter), 5)
                await asyncio.wait_for(echo_through(*pair, b"x", counter), 5)
                held.append(pair)
            except (RuntimeError, ConnectionError, asyncio.IncompleteReadError):
                refused += 1
        peak = node.fds()
        for _, writer in held:
            writer.close()
        await wait_until_async(lambda: node.fds() <= peak - len(held), 10)
        pair = await open_tunnel(node.address, load_origins.echo, counter)
        await echo_through(*pair, b"served again", counter)
        pair[1].close()
        return len(held), refused, peak

    held, refused, peak = uvloop.run(scenario())
    assert refused > 0 and held >= 20, (held, refused)  # up to 6 descriptors a tunnel
    assert peak <= 200
    assert node.process.poll() is None and node.stop() == 0
