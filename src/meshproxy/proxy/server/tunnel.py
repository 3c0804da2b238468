"""CONNECT relay over transports: two BufferedProtocols reading into one shared buffer.

The fallback for splice.py (which moves the bytes in the kernel, Linux only).

Every read lands in the shared buffer and is written straight to the other side. A
transport that cannot send everything at once keeps a view of the unsent part; the
buffer is then handed over to that write and a fresh one becomes the shared buffer, so
no later read can overwrite bytes still waiting to be sent. Write buffers are limited to
zero: any backlog pauses reading on the other side at once (flow control both ways).
"""

from __future__ import annotations

import asyncio
import mmap
from collections.abc import Callable
from typing import Any, Final, cast

from meshproxy.proxy.server.acks import ack_now, socket_of

# What a client that does not read holds of its tunnel here (upstream.READ_SIZE likewise).
BUFFER_SIZE: Final = 64 * 1024


class _SharedBuffer:
    """Anonymous mappings, not heap: a buffer left to a slow reader's write goes back to
    the system when that write is done."""

    def __init__(self) -> None:
        self.view = memoryview(mmap.mmap(-1, BUFFER_SIZE))

    def renew(self) -> None:
        self.view = memoryview(mmap.mmap(-1, BUFFER_SIZE))


_shared = _SharedBuffer()


def no_backlog(transport: asyncio.Transport) -> None:
    """Any byte left unsent pauses the writer (flow control at once). A TLS transport
    pauses at a high-water mark of 0 even with nothing unsent, and then never resumes:
    there the mark is 1 byte."""
    high = 1 if transport.get_extra_info("ssl_object") is not None else 0
    transport.set_write_buffer_limits(high=high)


class TunnelEnd(asyncio.BufferedProtocol):
    """One side of a tunnel. `count(n)` is told of every byte moved through this side."""

    def __init__(self, count: Callable[[int], None], on_close: Callable[[], None]) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: TunnelEnd | None = None
        self.eof = False
        self._count = count
        self._on_close = on_close
        self.sock: Any = None  # to ACK on (acks.py); None without TCP_QUICKACK

    def attach(self, transport: asyncio.Transport, peer: TunnelEnd) -> None:
        self.transport = transport
        self.sock = socket_of(transport)
        self.peer = peer
        no_backlog(transport)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.sock = socket_of(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _shared.view

    def buffer_updated(self, nbytes: int) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            return
        out = peer.transport
        out.write(_shared.view[:nbytes])
        if out.get_write_buffer_size():
            _shared.renew()
        if nbytes < BUFFER_SIZE and self.sock is not None:  # (a full read: acked anyway)
            ack_now(self.sock)  # the sender may be waiting for it (acks.py)
        self._count(nbytes)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.eof or peer.transport is None:
            self._on_close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # half-closed: the other direction may still be talking

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class TransportTunnel:
    """Both ends of a transport relay, closed and aborted together."""

    def __init__(self, client: TunnelEnd, upstream: TunnelEnd) -> None:
        self.ends = (client, upstream)

    def close(self) -> None:
        for end in self.ends:
            end.close()

    def abort(self) -> None:
        for end in self.ends:
            if end.transport is not None:
                end.transport.abort()
