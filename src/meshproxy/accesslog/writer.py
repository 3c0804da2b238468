"""The bounded queue between the data plane and the disk, and the thread that drains it.

On the request path: `add`, one length check and one deque append of an `Entry` (both
atomic under the GIL, so no lock). Every `interval` the writer thread takes what is
queued, encodes it (formats.py) a slice of YIELD_EVERY lines at a time, handing the GIL
back to the event loop between slices, and writes each batch in one call. When the
queue is full (the disk is slow, or full and every write fails) new entries are dropped
and counted: the proxy never waits for its log.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Final

from meshproxy.accesslog.formats import FORMATS, LineFormat
from meshproxy.accesslog.record import Entry
from meshproxy.accesslog.sink import RotatingFile, Sink, StreamSink, WriteFailed
from meshproxy.config import Settings

log = logging.getLogger("meshproxy.accesslog")

WARN_INTERVAL: Final = 60.0  # seconds between warnings about lines dropped
YIELD_EVERY: Final = 128  # lines encoded between two hand-backs of the GIL (about 0.25 ms)


class AccessLog:
    def __init__(
        self,
        sink: Sink,
        line_format: LineFormat,
        *,
        capacity: int = 65_536,
        interval: float = 0.25,
        batch: int = 4096,
    ) -> None:
        self._sink = sink
        self._format = line_format
        self._queue: deque[Entry] = deque()
        self.capacity = capacity
        self.interval = interval
        self.batch = batch
        self.dropped_full = 0  # counted by the data plane's thread only
        self.dropped_failed = 0  # counted by the writer thread only
        self.written = 0
        self._stopping = threading.Event()
        self._writer: threading.Thread | None = None
        self._warned = 0.0
        self._unwarned = 0
        self._full_seen = 0  # dropped_full at the writer's last look

    # ---- the request path -----------------------------------------------------------------

    def add(self, entry: Entry) -> None:
        """Queue one entry, or drop it if the queue is full."""
        queue = self._queue
        if len(queue) < self.capacity:
            queue.append(entry)
        else:
            self.dropped_full += 1

    # ---- the writer -------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        """Lines lost: the queue was full, or their write failed."""
        return self.dropped_full + self.dropped_failed

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._writer = threading.Thread(target=self._run, name="meshproxy-access-log", daemon=True)
        self._writer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop (a disk that hangs longer than `timeout` keeps the
        daemon thread, not the caller)."""
        self._stopping.set()
        thread = self._writer
        if thread is None:
            self.write_pending()
            self._sink.close()
            return
        thread.join(timeout)
        self._writer = None

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.write_pending()
            full = self.dropped_full
            if full != self._full_seen:
                self._warn(full - self._full_seen, "the queue was full (a slow disk?)")
                self._full_seen = full
        self.write_pending()
        self._sink.close()

    def write_pending(self) -> None:
        """Encode and write what is queued, a batch per write; a failed write drops its
        batch (counted) and leaves the rest for the next round."""
        queue = self._queue
        while queue:
            popleft = queue.popleft
            batch = [popleft() for _ in range(min(len(queue), self.batch))]
            data, lines = self._encode(batch)
            if not lines:
                continue
            try:
                self._sink.write(data)
            except WriteFailed as failure:
                kept = data[: failure.written].count(b"\n")
                self.written += kept
                lost = lines - kept
                self.dropped_failed += lost
                self._warn(lost, str(failure.error))
                return
            self.written += lines

    def _encode(self, batch: list[Entry]) -> tuple[bytes, int]:
        """The lines of `batch` and how many (those of entries that could not be encoded
        are left out)."""
        out = []
        lines = 0
        for start in range(0, len(batch), YIELD_EVERY):
            if start:
                # Encoding holds the GIL: hand it back to the event loop between slices, so
                # a batch of thousands stalls no request for more than a slice (without
                # this, the loop waits whole 5 ms switch intervals: the p99 of the log on).
                time.sleep(0)
            entries = batch[start : start + YIELD_EVERY]
            try:
                out.append(self._format.encode(entries))
                lines += len(entries)
            except Exception:  # one bad entry must not cost the slice: find it
                for entry in entries:
                    try:
                        out.append(self._format.encode([entry]))
                        lines += 1
                    except Exception:
                        log.exception("access-log entry %r could not be encoded", entry)
                        self.dropped_failed += 1
        return b"".join(out), lines

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
