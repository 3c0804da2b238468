"""Where formatted lines go: a file rotated by size (several processes may share it), or
a stream (stdout). Called from the writer thread only."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
from pathlib import Path
from typing import Protocol


class WriteFailed(Exception):
    """A write that failed after `written` bytes of it went out (ENOSPC, EIO, ...)."""

    def __init__(self, written: int, error: OSError) -> None:
        super().__init__(f"{error} (after {written} bytes)")
        self.written = written
        self.error = error


class Sink(Protocol):
    def write(self, data: bytes) -> None:
        """Write all of `data` or raise WriteFailed."""

    def close(self) -> None: ...


class StreamSink:
    """A descriptor that is not a file of ours (stdout: a terminal, a pipe to a log
    collector). Written in pieces of whole lines of at most PIPE_BUF bytes, which a pipe
    takes whole: the workers of `--workers N` sharing it never cut each other's lines."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def write(self, data: bytes) -> None:
        done = 0
        try:
            while done < len(data):
                end = done + select.PIPE_BUF
                if end < len(data):
                    cut = data.rfind(b"\n", done, end)
                    end = cut + 1 if cut >= done else end  # a longer line: as it comes
                else:
                    end = len(data)
                while done < end:
                    done += os.write(self._fd, data[done:end])
        except OSError as error:
            raise WriteFailed(done, error) from error

    def close(self) -> None:
        pass  # not ours to close


def rotated(path: Path, index: int) -> Path:
    """The name of the `index`-th kept file: access.log.1 is the newest."""
    return path.with_name(f"{path.name}.{index}")


class RotatingFile:
    """Appends to `path`; past `max_bytes` (0: never) the file becomes `path.1`, `path.1`
    becomes `path.2`, ... and `path.<backups>` is dropped. Worker processes sharing one
    file rotate under a lock and reopen a file rotated by another (or by logrotate)."""

    def __init__(self, path: Path, *, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._inode: tuple[int, int] | None = None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        info = os.fstat(fd)
        self._fd, self._inode = fd, (info.st_dev, info.st_ino)
        return fd

    def _current(self) -> int:
        """Our descriptor, reopened when the path no longer names the file it writes to."""
        fd = self._fd
        if fd is None:
            return self._open()
        try:
            info = os.stat(self.path)
            moved = (info.st_dev, info.st_ino) != self._inode
        except FileNotFoundError:
            moved = True
        if moved:
            self._drop()
            return self._open()
        return fd

    def write(self, data: bytes) -> None:
        done = 0
        try:
            fd = self._current()
            if self.max_bytes and os.fstat(fd).st_size + len(data) > self.max_bytes:
                fd = self._rotate()
            while done < len(data):
                done += os.write(fd, data[done:])
        except OSError as error:
            self._drop()  # reopened for the next batch: the disk may have room by then
            raise WriteFailed(done, error) from error

    def _rotate(self) -> int:
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = self._current()  # another process may have rotated meanwhile
            if os.fstat(fd).st_size == 0:
                return fd
            if self.backups:
                for index in range(self.backups - 1, 0, -1):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(rotated(self.path, index), rotated(self.path, index + 1))
                os.replace(self.path, rotated(self.path, 1))
            else:
                os.unlink(self.path)
            self._drop()
            return self._open()
        finally:
            os.close(lock)  # releases the lock

    def _drop(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        self._drop()
