"""Upstream connections: opened through a chosen egress (dial.py), pooled per (egress, host, port).

A connection is only ever reused for the same rotation key, so a pinned or random egress
choice is never silently replaced by whatever connection happens to be idle.
"""

from __future__ import annotations

import asyncio
import mmap
import time
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from meshproxy.proxy.server.acks import ack_now, socket_of

HIGH_WATER: Final = 256 * 1024
# Every upstream read lands in one shared buffer of this size, so a client that does not
# take a response holds at most this much of it in the proxy (the rest waits in the
# origin's socket): reading stops as soon as a client write leaves anything behind.
READ_SIZE: Final = 64 * 1024
# Enough for a burst of concurrent requests to one origin from one egress: a lower cap
# closes connections a moment before the next burst has to open them again.
MAX_IDLE_PER_KEY: Final = 64
MAX_IDLE_TOTAL: Final = 1024
IDLE_SECONDS: Final = 30.0
PoolKey = tuple[str | None, str, int]  # (egress key: EgressChoice.key, destination IP, port)


class Receiver(Protocol):
    """What an upstream connection tells the exchange it serves (exchange.Exchange)."""

    def upstream_data(self, data: memoryview) -> None: ...

    def holds_buffer(self) -> bool:
        """Whether a write still holds a view of the read buffer passed to it."""
        ...

    def upstream_lost(self, upstream: UpstreamConnection) -> None: ...

    def upstream_full(self) -> None:
        """The upstream takes no more for now: stop reading what goes to it."""
        ...

    def upstream_drained(self) -> None: ...


class _ReadBuffer:
    """The buffer every upstream connection reads into. A write that could not send all
    of it keeps a view of the rest: the buffer is then left to that write and a fresh one
    takes its place. Fresh ones are anonymous mappings, so the memory of a slow reader's
    buffer goes back to the system when it is done with (no heap to fragment)."""

    def __init__(self) -> None:
        self.view = memoryview(mmap.mmap(-1, READ_SIZE))

    def renew(self) -> None:
        self.view = memoryview(mmap.mmap(-1, READ_SIZE))


_buffer = _ReadBuffer()


class UpstreamConnection(asyncio.BufferedProtocol):
    """One connection to an origin; serves one exchange at a time, idles in the pool between."""

    def __init__(self, pool: UpstreamPool, key: PoolKey, *, poolable: bool = True) -> None:
        self.pool = pool
        self.key = key
        self.poolable = poolable  # False: closed when done (EgressChoice.poolable)
        self.transport: asyncio.Transport | None = None
        self.local_ip = ""
        self.ip_line = b"X-ProxyMesh-IP: \r\n"  # for every response head relayed from here
        self.exchange: Receiver | None = None
        self.idle_since = 0.0
        self.closed = False
        self.sock: Any = None  # to ACK on (acks.py); None without TCP_QUICKACK

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(HIGH_WATER)
        sockname = transport.get_extra_info("sockname")
        self.local_ip = str(sockname[0]) if sockname else ""
        self.sock = socket_of(transport)
        self.ip_line = b"X-ProxyMesh-IP: " + self.local_ip.encode() + b"\r\n"

    def get_buffer(self, sizehint: int) -> memoryview:
        return _buffer.view

    def buffer_updated(self, nbytes: int) -> None:
        exchange = self.exchange
        if exchange is None:  # an idle origin talking: the connection is unusable
            self.close()
            return
        exchange.upstream_data(_buffer.view[:nbytes])
        if self.exchange is not None and self.sock is not None:
            ack_now(self.sock)  # more of the response is due: the origin may wait for it
        if exchange.holds_buffer():
            _buffer.renew()

    def eof_received(self) -> bool:
        return False  # close; connection_lost tells the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_lost(self)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_full()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.upstream_drained()

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.abort()


class UpstreamPool:
    def __init__(self) -> None:
        self._idle: dict[PoolKey, list[UpstreamConnection]] = {}
        self._count = 0

    def take(self, key: PoolKey) -> UpstreamConnection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            self._count -= 1
            transport = connection.transport
            if not connection.closed and transport is not None and not transport.is_closing():
                if not idle:
                    del self._idle[key]
                return connection
        self._idle.pop(key, None)
        return None

    def put(self, connection: UpstreamConnection) -> None:
        if not connection.poolable:  # never taken again: it would only crowd the others
            connection.close()
            return
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) >= MAX_IDLE_PER_KEY or self._count >= MAX_IDLE_TOTAL or connection.closed:
            connection.close()
            return
        transport = connection.transport
        if transport is not None:
            transport.resume_reading()  # an idle origin's EOF must reach us
        connection.idle_since = time.monotonic()
        idle.append(connection)
        self._count += 1

    def discard(self, connection: UpstreamConnection) -> None:
        idle = self._idle.get(connection.key)
        if idle and connection in idle:
            idle.remove(connection)
            self._count -= 1
            if not idle:
                del self._idle[connection.key]

    def sweep(self, now: float | None = None) -> None:
        """Close connections idle longer than IDLE_SECONDS (origins drop them anyway)."""
        horizon = (now if now is not None else time.monotonic()) - IDLE_SECONDS
        for connection in [c for idle in self._idle.values() for c in idle]:
            if connection.idle_since <= horizon:
                self.discard(connection)
                connection.close()

    def close_all(self) -> None:
        for connection in [c for idle in self._idle.values() for c in idle]:
            connection.close()
        self._idle.clear()
        self._count = 0

    def __len__(self) -> int:
        return self._count


def protocol_factory(pool: UpstreamPool, key: PoolKey, poolable: bool = True) -> Callable[[], Any]:
    return lambda: UpstreamConnection(pool, key, poolable=poolable)
