"""Reading the access log back: every kept file, oldest first, filtered by egress address,
account, client address and time window — "who used egress X at time T" in one pass.

A line's time is when its request or tunnel ended; it matches a window when the span
[end - duration, end] overlaps it, so a tunnel open across T is found by T. Lines that do
not parse (one cut short by a full disk) are skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from meshproxy.accesslog.formats import iso_time
from meshproxy.accesslog.record import ABORTED, ANSWERED, RELAYED, TUNNEL
from meshproxy.accesslog.sink import rotated

_ROTATED = re.compile(r"\.(\d+)$")
_SQUID_OUTCOMES = {
    "TCP_TUNNEL": TUNNEL,
    "TCP_MISS_ABORTED": ABORTED,
    "TCP_DENIED": ANSWERED,
    "NONE": ANSWERED,
    "TCP_MISS": RELAYED,
}


def log_files(path: Path) -> list[Path]:
    """The log and its rotated files (path.1 newest), oldest first."""
    kept = []
    if path.parent.is_dir():
        for candidate in path.parent.glob(path.name + ".*"):
            match = _ROTATED.search(candidate.name)
            # The name the writer gives (sink.py): not "access.log.01" nor "access.log.x.1".
            if match and candidate == rotated(path, index := int(match.group(1))):
                kept.append((index, candidate))
    files = [candidate for _, candidate in sorted(kept, reverse=True)]
    if path.exists():
        files.append(path)
    return files


@dataclass(frozen=True)
class Query:
    egress: str | None = None
    account: str | None = None  # the account's lines, or a parent's and its sub-accounts'
    client: str | None = None
    since: float | None = None  # seconds since the epoch
    until: float | None = None

    def needles(self) -> list[tuple[str, ...]]:
        """For each value asked for, the texts a JSON line holding it contains (as the
        format writes it, raw UTF-8, and as lines before it wrote it, \\u escapes): a cheap
        test before parsing the line."""
        return [
            tuple({msgspec.json.encode(v).decode(), json.dumps(v)})
            for v in (self.egress, self.account, self.client)
            if v is not None
        ]

    def matches(self, record: dict[str, Any]) -> bool:
        if self.egress is not None and record.get("egress") != self.egress:
            return False
        if self.client is not None and record.get("client") != self.client:
            return False
        if self.account is not None and self.account not in (
            record.get("account"),
            record.get("parent"),
        ):
            return False
        if self.since is None and self.until is None:
            return True
        end = record["_end"]
        start = end - (record.get("duration_ms") or 0) / 1000
        return (self.since is None or end >= self.since) and (
            self.until is None or start <= self.until
        )


def parse_line(line: str) -> dict[str, Any] | None:
    """A JSON or Squid line as a dict of the JSON format's keys (Squid's lines have fewer),
    plus `_end` (epoch seconds); None for a line that is neither."""
    line = line.strip()
    if not line:
        return None
    try:
        if line.startswith("{"):
            record: dict[str, Any] = json.loads(line)
            record["_end"] = datetime.fromisoformat(record["time"]).timestamp()
            return record
        return _squid(line)
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def _squid(line: str) -> dict[str, Any] | None:
    fields = line.split()
    if len(fields) < 10:
        return None
    end = float(fields[0])
    code, _, status = fields[3].partition("/")
    method, url = fields[5], fields[6]
    target = url.removeprefix("http://").split("/", 1)[0] if url != "-" else None
    server = fields[8].partition("/")[2]
    return {
        "time": iso_time(end),
        "client": fields[2],
        "account": None if fields[7] == "-" else fields[7],
        "method": method,
        "target": target,
        "status": int(status) or None,
        "bytes_out": int(fields[4]),
        "duration_ms": float(fields[1]),
        "outcome": _SQUID_OUTCOMES.get(code, code),
        "server": None if server in ("", "-") else server,
        "_end": end,
    }


def search(files: Iterable[Path], query: Query) -> Iterator[dict[str, Any]]:
    """The matching lines of `files`, in file order, without the `_end` key."""
    needles = query.needles()
    for path in files:
        try:
            handle = path.open(encoding="utf-8", errors="replace")
        except FileNotFoundError:  # rotated away meanwhile
            continue
        with handle:
            for line in handle:
                if line.startswith("{") and not all(
                    any(form in line for form in forms) for forms in needles
                ):
                    continue
                record = parse_line(line)
                if record is not None and query.matches(record):
                    record.pop("_end")
                    yield record


def parse_time(text: str) -> float:
    """ISO 8601 (a time without a zone is UTC) or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
