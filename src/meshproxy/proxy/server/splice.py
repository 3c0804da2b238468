"""CONNECT relay with splice(2): tunnelled bytes go socket -> pipe -> socket in the kernel.

Each direction is a `Pump`: it waits for its source to be readable, splices what is there
into its pipe and from the pipe into its destination. When the destination cannot take
more, the pump stops watching its source and watches the destination instead until the
pipe is empty (flow control: a slow reader holds at most a pipe of data in the proxy).
Pipes are created when data first flows, so an idle tunnel holds only its two sockets.
Bytes are counted from splice's return values as they reach the destination. With an
`allowance` (the bytes the account may still move), a read takes at most what is left,
and none once it is spent: a limited account's tunnel ends at its limit, not a pipe or a
sweep later.

Linux only (`AVAILABLE`); elsewhere, or when a tunnel cannot be detached cleanly, the
transport relay in tunnel.py is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import Callable
from typing import Final

from meshproxy.proxy.core.quota import read_size
from meshproxy.proxy.server.acks import ack_now, acks

# Larger than the default 64 KiB: fewer splice calls per GB. Pipes count against the
# user's pipe-user-pages-soft (64 MiB), so not larger; the default stays if refused.
PIPE_SIZE: Final = 256 * 1024
CHUNK: Final = PIPE_SIZE
_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_SETPIPE_SZ: Final = getattr(fcntl, "F_SETPIPE_SZ", 1031)


# Linux's splice(2). Not Final, so read at each use: the tests turn it off to run the
# transport relay (tunnel.py) where splice is available.
AVAILABLE = hasattr(os, "splice")


def detach(transport: asyncio.Transport) -> socket.socket | None:
    """Take the client socket out of its transport, for splice(2); None when no
    descriptor is left to duplicate it (EMFILE: the caller ends the tunnel)."""
    try:
        duplicate = os.dup(transport.get_extra_info("socket").fileno())
    except OSError:
        return None
    client_socket = socket.socket(fileno=duplicate)
    client_socket.setblocking(False)
    transport.set_protocol(asyncio.Protocol())  # the transport's end is no longer ours
    transport.close()  # closes uvloop's fd only (no shutdown): the duplicate stays open
    return client_socket


class Pump:
    """One direction of a tunnel: `source` -> pipe -> `destination`."""

    __slots__ = (
        "_acks",
        "_allowance",
        "_count",
        "_loop",
        "_on_error",
        "_pipe",
        "_tunnel",
        "blocked",
        "destination",
        "eof",
        "pending",
        "source",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        source: socket.socket,
        destination: socket.socket,
        tunnel: SpliceTunnel,
        count: Callable[[int], None],
        allowance: Callable[[], int | None] | None = None,
    ) -> None:
        self._loop = loop
        self._allowance = allowance
        self.source = source
        self._acks = acks(source)  # TCP_QUICKACK after a read (acks.py)
        self.destination = destination
        self._tunnel = tunnel
        self._count = count
        self._pipe: tuple[int, int] | None = None
        self.pending = 0  # bytes in the pipe, not yet in the destination
        self.blocked = False  # waiting for the destination to drain
        self.eof = False  # the source has ended and everything read has been passed on

    def start(self) -> None:
        self._loop.add_reader(self.source.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            pipe = self._pipe
            size = CHUNK
            if self._allowance is not None:
                size = read_size(self._allowance(), CHUNK)
                if not size:  # the account's limit is reached: the tunnel ends
                    self._tunnel.close()
                    return
            if pipe is None:  # EMFILE at the descriptor limit: close, never spin
                pipe = self._pipe = _new_pipe()
            moved = os.splice(self.source.fileno(), pipe[1], size, flags=_FLAGS)
            if self._acks and 0 < moved < size:  # (a full read: acked anyway)
                ack_now(self.source)  # the sender may be waiting for it (acks.py)
        except BlockingIOError:
            return
        except OSError:
            self._tunnel.close()
            return
        if not moved:
            self._loop.remove_reader(self.source.fileno())
            self._source_ended()
            return
        self.pending += moved
        self._flush()

    def _flush(self) -> None:
        pipe = self._pipe
        assert pipe is not None
        destination = self.destination.fileno()
        while self.pending:
            try:
                moved = os.splice(pipe[0], destination, self.pending, flags=_FLAGS)
            except BlockingIOError:
                if not self.blocked:
                    self.blocked = True
                    self._loop.remove_reader(self.source.fileno())
                    self._loop.add_writer(destination, self._writable)
                return
            except OSError:
                self._tunnel.close()
                return
            self.pending -= moved
            self._count(moved)
        if self.blocked:
            self.blocked = False
            self._loop.remove_writer(destination)
            if self.eof:
                self._pass_eof()
            else:
                self._loop.add_reader(self.source.fileno(), self._readable)

    def _writable(self) -> None:
        self._flush()

    def _source_ended(self) -> None:
        self.eof = True
        if not self.blocked:
            self._pass_eof()

    def _pass_eof(self) -> None:
        """The source half-closed: half-close the destination; the other way may go on."""
        self.release_pipe()
        with contextlib.suppress(OSError):
            self.destination.shutdown(socket.SHUT_WR)
        self._tunnel.pump_done()

    def stop(self) -> None:
        """Stop watching both sockets (the tunnel closes them)."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self.source.fileno())
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(self.destination.fileno())
        self.release_pipe()

    def release_pipe(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            os.close(pipe[0])
            os.close(pipe[1])


def _new_pipe() -> tuple[int, int]:
    read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(write, _SETPIPE_SZ, PIPE_SIZE)
    return read, write


class SpliceTunnel:
    """Both directions between the client and upstream sockets (both non-blocking).

    `count(n)`: told of every byte delivered, either way (with `count_out`, only of those
    to the upstream; `count_out` of those to the client). `on_close()`: called once, when
    both sides have ended or the tunnel was closed."""

    __slots__ = ("_on_close", "client", "closed", "pumps", "upstream")  # (held per idle tunnel)

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client: socket.socket,
        upstream: socket.socket,
        count: Callable[[int], None],
        on_close: Callable[[], None],
        count_out: Callable[[int], None] | None = None,
        allowance: Callable[[], int | None] | None = None,
    ) -> None:
        self._on_close = on_close
        self.client = client
        self.upstream = upstream
        self.closed = False
        self.pumps = (
            Pump(loop, client, upstream, self, count, allowance),
            Pump(loop, upstream, client, self, count_out or count, allowance),
        )

    def start(self) -> None:
        for pump in self.pumps:
            pump.start()

    def pump_done(self) -> None:
        if all(pump.eof and not pump.blocked for pump in self.pumps):
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for pump in self.pumps:
            pump.stop()
        self.client.close()
        self.upstream.close()
        self._on_close()

    def abort(self) -> None:
        self.close()
