"""The two line formats: JSON lines (every field) and Squid's native access.log format.

Squid's format (`logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un
%Sh/%<a %mt`) is what calamaris, sarg, GoAccess (`--log-format=SQUID`) and other Squid
tools read. It has no field for the egress address or the proxy's reason: the JSON
format carries those, and `meshproxy admin logs --egress` needs it.

A format is one call, `encode`, run on the writer thread (writer.py) over a slice of
entries (record.py): the JSON format builds a msgspec Struct per line (its field order is
the line's) and encodes the slice with one `encode_lines` call, escaping included (laying
the JSON out in compiled Python instead cost 2.5x the instructions); Squid's lines are laid
out in Python. (Building the Structs on the request path instead cost the node more,
bench.accesslog_cost: +13.0 against +7 µs a request.)
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Final, Protocol

import msgspec

from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL, Entry
from meshproxy.domain.addresses import host_port

# Squid's result codes for what the proxy did; refusals are TCP_DENIED as in Squid.
_DENIED: Final = frozenset({401, 402, 403, 407, 509})


class LineFormat(Protocol):
    def encode(self, entries: list[Entry]) -> bytes:
        """The lines of `entries`, each ending with a newline."""
        ...


def line(fmt: LineFormat, entry: Entry) -> str:
    """The line of one `Entry` (for tools and tests): the same path as the writer's."""
    return fmt.encode([entry]).decode("utf-8").removesuffix("\n")


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_MILLISECONDS: Final = [f"{n:03d}Z" for n in range(1000)]


TARGETS_KEPT: Final = 4096  # hosts whose target text is kept (then all are forgotten)


class _Clock:
    """ISO 8601 UTC times with milliseconds, the date and time text cached per second and
    the whole text per millisecond (at thousands of lines a second, many share one)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._millis = -1
        self._text = ""

    def iso(self, seconds: float) -> str:
        whole = int(seconds)
        millis = int((seconds - whole) * 1000)
        if whole != self._second:
            self._second = whole
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
        elif millis == self._millis:
            return self._text
        self._millis = millis
        self._text = self._prefix + _MILLISECONDS[millis]
        return self._text


class _Targets:
    """host:port texts of the hosts seen last: most lines go to a few hosts, and a dict
    look-up costs a fifth of building the text (callgrind: about 200 against 900
    instructions). At most TARGETS_KEPT hosts, each with its last port."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[int, str]] = {}

    def text(self, host: str, port: int) -> str:
        known = self._texts.get(host)
        if known is not None and known[0] == port:
            return known[1]
        text = host_port(host, port)
        if len(self._texts) >= TARGETS_KEPT:
            self._texts.clear()
        self._texts[host] = (port, text)
        return text


def rounded(value: float) -> int:
    """round(value): half to even, as the built-in (which compiled code calls generically,
    as a Python function; this compiles to a few float operations)."""
    whole = math.floor(value)
    rest = value - whole  # exact: a double minus its floor
    if rest > 0.5 or (rest == 0.5 and whole % 2 == 1):
        whole += 1
    return whole


class JsonLine(msgspec.Struct, gc=False):  # only atoms: no cycles to collect
    """One JSON line; fields in the line's order. `path` is left out unless logged."""

    time: str
    node: str
    proxy: str
    account: str | None
    parent: str | None
    client: str
    egress: str | None
    method: str
    target: str | None
    path: str | msgspec.UnsetType | None
    status: int | None
    bytes_in: int
    bytes_out: int
    duration_ms: float
    outcome: str
    error: str | None
    server: str | None


_UNSET: Final = msgspec.UNSET


class JsonFormat:
    def __init__(self, node: str, *, paths: bool) -> None:
        self.node = node
        self.paths = paths
        self._clock = _Clock()
        self._targets = _Targets()
        self._encoder = msgspec.json.Encoder()

    def encode(self, entries: list[Entry]) -> bytes:
        clock, targets, node, paths = self._clock, self._targets, self.node, self.paths
        return self._encoder.encode_lines([
            JsonLine(
                clock.iso(entry.time),
                node,
                entry.proxy,
                entry.account,
                entry.parent,
                entry.client,
                entry.egress or None,
                entry.method.decode("latin-1"),
                targets.text(entry.host, entry.port) if entry.host else None,
                (entry.path.decode("latin-1") or None) if paths else _UNSET,
                entry.status or None,
                entry.bytes_in,
                entry.bytes_out,
                rounded(entry.duration * 1_000_000) / 1000,  # whole µs, in ms
                entry.outcome,
                entry.error,
                entry.server or None,
            )
            for entry in entries
        ])  # fmt: skip


class SquidFormat:
    def __init__(self, node: str, *, paths: bool) -> None:
        del node  # Squid's format has no field for it
        self.paths = paths
        self._targets = _Targets()

    def encode(self, entries: list[Entry]) -> bytes:
        return "".join([self._line(entry) + "\n" for entry in entries]).encode("utf-8", "replace")

    def _line(self, entry: Entry) -> str:
        outcome, status, host, server = entry.outcome, entry.status, entry.host, entry.server
        if outcome == TUNNEL:
            code = "TCP_TUNNEL"
        elif outcome == ABORTED:
            code = "TCP_MISS_ABORTED"
        elif outcome == ANSWERED:
            code = "TCP_DENIED" if status in _DENIED else "NONE"
        else:
            code = "TCP_MISS"
        text_method = entry.method.decode("latin-1") or "-"
        if not host:
            url = "-"
        elif text_method == "CONNECT":
            url = self._targets.text(host, entry.port)
        else:
            path = entry.path.decode("latin-1") if self.paths else ""
            url = "http://" + self._targets.text(host, entry.port) + path
        hierarchy = f"HIER_DIRECT/{server}" if server else "HIER_NONE/-"
        return (
            f"{entry.time:.3f} {rounded(entry.duration * 1000):6d} {entry.client or '-'} "
            f"{code}/{status:03d} {entry.bytes_out} {_token(text_method)} {_token(url)} "
            f"{_token(entry.account or '-')} {hierarchy} -"
        )


def _token(text: str) -> str:
    """One space-free field (Squid's readers split on whitespace)."""
    if text.isascii() and text.isprintable() and " " not in text:
        return text or "-"
    return "".join(c if "!" <= c <= "~" else f"%{ord(c):02X}" for c in text) if text else "-"


FORMATS: dict[str, type[JsonFormat] | type[SquidFormat]] = {
    "json": JsonFormat,
    "squid": SquidFormat,
}
