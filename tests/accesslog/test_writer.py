"""The writer: lines reach the file whole and in order, rotation keeps `backups` files, a
full queue or a failing disk drops lines (counted) without ever blocking or raising in
`add`; the buffer is handed over by its own thread (the loop's timer), never cut."""

from __future__ import annotations

import asyncio
import json
import os
import select
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from accesslog.entries import entry
from meshproxy.accesslog import AccessLog, open_access_log
from meshproxy.accesslog.formats import JsonFormat, SquidFormat, line
from meshproxy.accesslog.search import log_files
from meshproxy.accesslog.sink import RotatingFile, WriteFailed
from meshproxy.config import load_settings

FORMAT = JsonFormat("n", paths=False)


def _log(path: Path, **options: Any) -> AccessLog:
    sink = RotatingFile(
        path, max_bytes=options.pop("max_bytes", 0), backups=options.pop("backups", 3)
    )
    return AccessLog(sink, FORMAT, **options)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lines_written_by_the_thread_in_order(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"  # the directory is created
    log = _log(path, interval=0.01)
    log.start()
    for n in range(500):
        log.add(entry(bytes_in=n))
    log.stop()
    assert [line["bytes_in"] for line in _lines(path)] == list(range(500))
    assert log.written == 500 and log.dropped == 0 and log.queued == 0


def test_rotation_by_size_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    line_size = len(line(FORMAT, entry(bytes_in=1000))) + 1
    log = _log(path, max_bytes=10 * line_size, backups=2)
    for n in range(45):
        log.add(entry(bytes_in=1000 + n))  # same width: every line is line_size bytes
        if n % 5 == 4:
            log.write_pending()
    log.stop()
    files = log_files(path)
    assert [f.name for f in files] == ["access.log.2", "access.log.1", "access.log"]
    numbers = [line["bytes_in"] for f in files for line in _lines(f)]
    assert numbers == list(range(1020, 1045))  # the oldest 20 rotated away, none torn
    assert all(f.stat().st_size <= 10 * line_size for f in files)


def test_rotation_without_backups_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = _log(path, max_bytes=1, backups=0)
    for n in range(3):
        log.add(entry(bytes_in=n))
        log.write_pending()
    log.stop()
    assert [line["bytes_in"] for line in _lines(path)] == [2]
    assert log_files(path) == [path]


def test_a_file_moved_away_is_reopened(tmp_path: Path) -> None:
    """logrotate's default (move, then the program writes a new file)."""
    path = tmp_path / "access.log"
    log = _log(path)
    log.add(entry(bytes_in=1))
    log.write_pending()
    path.rename(tmp_path / "moved.log")
    log.add(entry(bytes_in=2))
    log.stop()
    assert [line["bytes_in"] for line in _lines(tmp_path / "moved.log")] == [1]
    assert [line["bytes_in"] for line in _lines(path)] == [2]


def test_two_processes_share_one_file_and_its_rotation(tmp_path: Path) -> None:
    """Workers of `--workers N` append to one file; whoever rotates, nothing is lost."""
    path = tmp_path / "access.log"
    line_size = len(line(FORMAT, entry(bytes_in=1000))) + 1
    logs = [_log(path, max_bytes=7 * line_size, backups=20) for _ in range(2)]
    for n in range(60):
        log = logs[n % 2]
        log.add(entry(bytes_in=1000 + n))
        log.write_pending()
    for log in logs:
        log.stop()
    numbers = sorted(int(str(line["bytes_in"])) for f in log_files(path) for line in _lines(f))
    assert numbers == list(range(1000, 1060))


def test_full_queue_drops_and_counts(tmp_path: Path) -> None:
    log = _log(tmp_path / "access.log", capacity=10)
    for n in range(25):
        log.add(entry(bytes_in=n))
    assert log.queued == 10 and log.dropped_full == 15 and log.dropped == 15
    log.stop()
    assert [line["bytes_in"] for line in _lines(tmp_path / "access.log")] == list(range(10))


def test_slow_disk_never_blocks_add(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A write that hangs holds the writer thread only: `add` goes on, dropping past the
    queue's capacity, and what was queued is written once the disk answers."""
    release = threading.Event()
    writing = threading.Event()
    written: list[bytes] = []

    class SlowSink:
        def write(self, data: bytes) -> None:
            writing.set()
            assert release.wait(10)
            written.append(data)

        def close(self) -> None:
            pass

    log = AccessLog(SlowSink(), FORMAT, capacity=100, interval=0.01)
    log.start()
    log.add(entry(bytes_in=0))
    log.flush()
    assert writing.wait(10)  # the writer holds entry 0 in a hung write
    for n in range(1, 1001):
        log.add(entry(bytes_in=n))
    # the line being written counts as waiting until its write returns
    assert log.queued == 100 and log.dropped_full == 901
    release.set()
    log.stop()
    lines = [json.loads(line) for data in written for line in data.splitlines()]
    assert [line["bytes_in"] for line in lines] == list(range(100))
    assert "access log: 901 lines dropped: the queue was full" in caplog.text


def test_disk_full_drops_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """/dev/full answers every write with ENOSPC, like a full file system."""
    log = _log(Path("/dev/full"), max_bytes=1000)
    for n in range(50):
        log.add(entry(bytes_in=n))
    log.write_pending()
    log.add(entry())
    log.stop()
    assert log.dropped_failed == 51 and log.written == 0 and log.queued == 0
    assert caplog.text.count("No space left on device") == 1  # one warning a minute


def test_unwritable_path_drops_and_counts(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    log = _log(blocker / "access.log")
    log.add(entry())
    log.add(entry())
    log.stop()
    assert log.dropped_failed == 2


def test_disk_that_frees_up_gets_lines_again(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    sink = RotatingFile(path, max_bytes=0, backups=0)
    failing = True
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if failing:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    log = AccessLog(sink, FORMAT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", write)
        log.add(entry(bytes_in=1))
        log.write_pending()
        failing = False
        log.add(entry(bytes_in=2))
        log.write_pending()
    log.stop()
    assert log.dropped_failed == 1
    assert [line["bytes_in"] for line in _lines(path)] == [2]


def test_partial_write_counts_the_lines_that_went_out(tmp_path: Path) -> None:
    class HalfSink:
        def write(self, data: bytes) -> None:
            half = data.index(b"\n", len(data) // 2) + 1
            raise WriteFailed(half, OSError(28, "No space left on device"))

        def close(self) -> None:
            pass

    log = AccessLog(HalfSink(), FORMAT)
    for n in range(10):
        log.add(entry(bytes_in=n))
    log.stop()
    assert log.written + log.dropped_failed == 10 and 0 < log.written < 10


def test_stdout_gets_whole_lines_in_pipe_sized_writes(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """path = "-": lines go to stdout in writes a pipe takes whole (PIPE_BUF), each ending
    a line, so workers sharing a pipe to a collector never cut each other's lines."""
    settings = load_settings(None, data_dir=str(tmp_path), access_log={"path": "-"})
    log = open_access_log(settings)
    assert log is not None
    sizes: list[bytes] = []
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        sizes.append(bytes(data))
        return real_write(fd, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "write", write)
        for n in range(100):
            log.add(entry(bytes_in=n))
        log.stop()
    out = capfd.readouterr().out
    assert [json.loads(line)["bytes_in"] for line in out.splitlines()] == list(range(100))
    assert len(sizes) > 1 and all(len(s) <= select.PIPE_BUF and s.endswith(b"\n") for s in sizes)
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("line_format", [JsonFormat, SquidFormat])
def test_lines_are_laid_out_on_add_and_written_in_chunks(
    tmp_path: Path, line_format: type[JsonFormat | SquidFormat]
) -> None:
    """`add` lays the line out at once (nothing of the entry is kept); a buffer past
    `chunk_bytes` goes to the writer whole, so each write ends with a whole line."""
    writes: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> None:
            writes.append(data)

        def close(self) -> None:
            pass

    log = AccessLog(Sink(), line_format("n", paths=False), chunk_bytes=1000)
    for n in range(100):
        log.add(entry(bytes_in=n))
    assert log.queued == 100
    log.write_pending()
    assert len(writes) > 5 and all(data.endswith(b"\n") for data in writes)
    text = b"".join(writes).decode()
    fmt = line_format("n", paths=False)
    expected = "".join(line(fmt, entry(bytes_in=n)) + "\n" for n in range(100))
    assert text == expected and log.written == 100 and log.queued == 0


def test_a_line_that_cannot_be_encoded_costs_itself_only(tmp_path: Path) -> None:
    """A line half laid out when the format raised (here: a lone surrogate, which UTF-8
    cannot carry) is taken back: the next line starts clean and `add` never raises into
    the request path."""
    path = tmp_path / "access.log"
    log = _log(path)
    log.add(entry(bytes_in=0))
    log.add(entry(bytes_in=1, error="bad \ud800"))
    log.add(entry(bytes_in=2))
    log.stop()
    assert log.dropped_unencodable == 1 and log.dropped == 1 and log.written == 2
    assert [line["bytes_in"] for line in _lines(path)] == [0, 2]


def test_the_loop_hands_the_buffer_over_every_interval(tmp_path: Path) -> None:
    """Started with a loop, the log's timer on that loop hands a quiet buffer over (a
    line is on disk within an interval or two, however few lines come)."""
    path = tmp_path / "access.log"
    log = _log(path, interval=0.01)

    async def one_line() -> None:
        log.start(asyncio.get_running_loop())
        log.add(entry(bytes_in=7))
        deadline = time.monotonic() + 10
        while not path.exists() or not path.read_text():
            assert time.monotonic() < deadline, "the line never reached the file"
            await asyncio.sleep(0.01)
        log.close()

    asyncio.run(one_line())
    log.join()
    assert [line["bytes_in"] for line in _lines(path)] == [7]
