"""Searching the kept files: by egress and time window (a span overlapping it), account
(or parent), client; rotated files included, oldest first; torn lines skipped."""

from __future__ import annotations

from pathlib import Path

from accesslog.entries import entry
from meshproxy.accesslog.formats import JsonFormat, SquidFormat, line
from meshproxy.accesslog.record import TUNNEL, Entry
from meshproxy.accesslog.search import Query, log_files, parse_time, search

T = 1_764_754_262.0  # 2025-12-03T09:31:02Z


def _write(path: Path, *entries: Entry | str, squid: bool = False) -> None:
    """Entries as lines (a str as it is)."""
    line_format = (SquidFormat if squid else JsonFormat)("n", paths=False)
    lines = (e if isinstance(e, str) else line(line_format, e) for e in entries)
    path.write_text("".join(line + "\n" for line in lines))


def test_log_files_oldest_first(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    for name in ("access.log", "access.log.1", "access.log.10", "access.log.2", "access.log.x",
                 "access.log.lock", "access.log.01", "other.log.1"):
        (tmp_path / name).write_text("")
    assert [f.name for f in log_files(path)] == [
        "access.log.10", "access.log.2", "access.log.1", "access.log"
    ]
    assert log_files(tmp_path / "missing" / "access.log") == []


def test_who_used_egress_at_time(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    _write(
        tmp_path / "access.log.1",
        entry(time=T - 100, egress="127.0.0.2", account="early"),
        # a tunnel open from T-50 to T+50: found by T though its line came later
        entry(time=T + 50, duration=100.0, egress="127.0.0.2", account="tunnel",
              method=b"CONNECT", outcome=TUNNEL),
    )
    _write(
        path,
        entry(time=T, egress="127.0.0.2", account="bob", parent="reseller"),
        entry(time=T, egress="127.0.0.3", account="carol"),
        "{not json",  # a line cut short by a full disk
        entry(time=T + 100, egress="127.0.0.2", account="late"),
    )
    with path.open("a") as handle:
        handle.write('{"time": "2025-12-03T09:3')
    found = search(log_files(path), Query(egress="127.0.0.2", since=T - 1, until=T + 1))
    assert [r["account"] for r in found] == ["tunnel", "bob"]
    every = list(search(log_files(path), Query()))
    assert [r["account"] for r in every] == ["early", "tunnel", "bob", "carol", "late"]
    assert all("_end" not in r for r in every)


def test_account_client_and_parent(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    _write(
        path,
        entry(account="bob", parent="reseller", client="127.0.0.5"),
        entry(account="reseller", client="127.0.0.6"),
        entry(account="carol", client="127.0.0.5"),
    )
    assert [r["account"] for r in search([path], Query(account="reseller"))] == [
        "bob", "reseller"
    ]
    assert [r["account"] for r in search([path], Query(client="127.0.0.5"))] == ["bob", "carol"]
    assert [r["account"] for r in search([path], Query(client="127.0.0.5", account="bob"))] == [
        "bob"
    ]


def test_squid_lines_searched_by_time_account_client(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    _write(path, entry(time=T, account="bob"), entry(time=T + 600, account="carol"), squid=True)
    found = list(search([path], Query(since=T - 1, until=T + 1, client="127.0.0.1")))
    assert [r["account"] for r in found] == ["bob"]
    assert list(search([path], Query(egress="127.0.0.2"))) == []  # Squid lines have no egress


def test_parse_time() -> None:
    assert parse_time("2025-12-03T09:31:02Z") == T
    assert parse_time("2025-12-03T09:31:02") == T  # no zone: UTC
    assert parse_time("2025-12-03T10:31:02+01:00") == T
    assert parse_time(str(T)) == T


def test_a_value_needing_escapes_is_still_found(tmp_path: Path) -> None:
    """The quick substring test before parsing looks for the value as the line writes it."""
    path = tmp_path / "access.log"
    _write(path, entry(account='ü"x'), entry(account="plain"), entry(account="ü"))
    assert [r["account"] for r in search([path], Query(account='ü"x'))] == ['ü"x']
    assert [r["account"] for r in search([path], Query(account="ü"))] == ["ü"]
