"""The access log's buffer on the request path, and the thread that writes it out.

On the request path: `add` lays the entry's line out (formats.py) at the end of a
`BytesWriter` owned by the thread that adds (the event loop's), about 2k instructions
and no object per line. Every `interval` (a timer on the loop) or every CHUNK_BYTES, that
buffer is handed over whole, as one bytes object, to a deque the writer thread drains,
each chunk in one write (which releases the GIL: the writer never holds it for long).
Only the adding thread touches the buffer, so a line is never cut by a hand-over. When
`capacity` lines wait (the disk is slow, or full and every write fails) new entries are
dropped and counted: the proxy never waits for its log.

Until session 7 the entries themselves were queued and the writer thread encoded them
(msgspec): ~10k instructions a request with the GIL passed back and forth, against ~4.5k
for issue 15's 3 % (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Final

from librt.strings import BytesWriter

from meshproxy.accesslog.formats import FORMATS, LineFormat
from meshproxy.accesslog.record import Entry
from meshproxy.accesslog.sink import RotatingFile, Sink, StreamSink, WriteFailed
from meshproxy.config import Settings

log = logging.getLogger("meshproxy.accesslog")

WARN_INTERVAL: Final = 60.0  # seconds between warnings about lines dropped
CHUNK_BYTES: Final = 64 * 1024  # a buffer this full is handed over (one write, ~250 lines)


class AccessLog:
    def __init__(
        self,
        sink: Sink,
        line_format: LineFormat,
        *,
        capacity: int = 65_536,
        interval: float = 0.25,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._sink = sink
        self._format = line_format
        self.capacity = capacity
        self.interval = interval
        self._chunk_bytes = chunk_bytes
        # The adding thread's: its buffer, the lines in it, the lines handed over.
        self._out = BytesWriter()
        self._lines = 0
        self._handed = 0
        self.dropped_full = 0
        self.dropped_unencodable = 0
        # Handed over, in order; the deque's appends and pops are atomic under the GIL.
        self._chunks: deque[tuple[bytes, int]] = deque()
        # The writer thread's: lines it is done with (written or lost), and how.
        self._done = 0
        self.written = 0
        self.dropped_failed = 0
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._warned = 0.0
        self._unwarned = 0
        self._full_seen = 0  # dropped_full at the writer's last look

    # ---- the request path (the adding thread) -------------------------------------------

    def add(self, entry: Entry) -> None:
        """Lay the entry's line out in the buffer, or drop it if `capacity` lines wait."""
        if self._lines + self._handed - self._done >= self.capacity:
            self.dropped_full += 1
            return
        out = self._out
        start = len(out)
        try:
            self._format.write(out, entry)
        except Exception:  # a bug in a format must cost one line, never the request
            out.truncate(start)
            self.dropped_unencodable += 1
            log.exception("access-log entry %r could not be encoded", entry)
            return
        self._lines += 1
        if len(out) >= self._chunk_bytes:
            self.flush()

    def flush(self) -> None:
        """Hand the buffer's lines to the writer (from the adding thread only)."""
        lines = self._lines
        if not lines:
            return
        data = self._out.getvalue()
        self._out = BytesWriter()
        self._lines = 0
        self._chunks.append((data, lines))
        self._handed += lines

    def _tick(self) -> None:
        self.flush()
        loop = self._loop
        if loop is not None and not self._stopping.is_set():
            self._timer = loop.call_later(self.interval, self._tick)

    # ---- the writer -------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Lines lost: the queue was full, their write failed, or a format failed."""
        return self.dropped_full + self.dropped_failed + self.dropped_unencodable

    @property
    def queued(self) -> int:
        """Lines laid out and not yet written (or lost)."""
        return self._lines + self._handed - self._done

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start the writer thread; with `loop` (the adding thread's), hand the buffer
        over every `interval` (else only when a chunk is full, and in `close`)."""
        self._writer = threading.Thread(target=self._run, name="meshproxy-access-log", daemon=True)
        self._writer.start()
        if loop is not None:
            self._loop = loop
            self._timer = loop.call_later(self.interval, self._tick)

    def close(self) -> None:
        """From the adding thread, after its last line: hand over what is left and tell
        the writer to finish (`join` waits for it)."""
        timer, self._timer, self._loop = self._timer, None, None
        if timer is not None:
            timer.cancel()
        self.flush()
        self._stopping.set()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the writer to write what was handed over and stop (a disk that hangs
        longer than `timeout` keeps the daemon thread, not the caller)."""
        thread = self._writer
        if thread is None:
            self._write_chunks()
            self._sink.close()
            return
        thread.join(timeout)
        self._writer = None

    def stop(self, timeout: float = 5.0) -> None:
        """`close` and `join`, from the adding thread."""
        self.close()
        self.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self._write_chunks()
            full = self.dropped_full
            if full != self._full_seen:
                self._warn(full - self._full_seen, "the queue was full (a slow disk?)")
                self._full_seen = full
        self._write_chunks()
        self._sink.close()

    def write_pending(self) -> None:
        """Hand over and write what is laid out, here and now (the adding thread's call:
        tests, a log without its thread)."""
        self.flush()
        self._write_chunks()

    def _write_chunks(self) -> None:
        """Write what was handed over, a chunk per write; a failed write loses the lines
        of its chunk it did not write (counted) and leaves the rest for the next round."""
        chunks = self._chunks
        while chunks:
            data, lines = chunks.popleft()
            try:
                self._sink.write(data)
            except WriteFailed as failure:
                kept = data[: failure.written].count(b"\n")
                lost = lines - kept
                self.written += kept
                self.dropped_failed += lost
                self._done += lines
                self._warn(lost, str(failure.error))
                return
            self.written += lines
            self._done += lines

    def _warn(self, lost: int, why: str) -> None:
        """At most one warning a WARN_INTERVAL, with the lines lost since the last."""
        self._unwarned += lost
        now = time.monotonic()
        if now - self._warned >= WARN_INTERVAL:
            log.warning("access log: %d lines dropped: %s", self._unwarned, why)
            self._warned, self._unwarned = now, 0


def open_access_log(settings: Settings) -> AccessLog | None:
    """The node's access log as configured (`[access_log]`), not started; None when off."""
    config = settings.access_log
    if not config.enabled:
        return None
    sink: Sink
    if str(config.path) == "-":
        sys.stdout.flush()  # what was printed before goes first
        sink = StreamSink(sys.stdout.fileno())
    else:
        sink = RotatingFile(log_path(settings), max_bytes=config.max_bytes, backups=config.backups)
    node = config.node or socket.gethostname()
    line_format = FORMATS[config.format](node, paths=config.paths)
    return AccessLog(sink, line_format, capacity=config.queue, interval=config.interval)


def log_path(settings: Settings) -> Path:
    """The access log's file: `access_log.path`, relative to `data_dir` unless absolute."""
    return settings.data_dir / settings.access_log.path
