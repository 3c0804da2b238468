"""The two line formats: JSON lines (every field) and Squid's native access.log format.

Squid's format (`logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un
%Sh/%<a %mt`) is what calamaris, sarg, GoAccess (`--log-format=SQUID`) and other Squid
tools read. It has no field for the egress address or the proxy's reason: the JSON
format carries those, and `meshproxy admin logs --egress` needs it.

A format is one call, `encode`, run on the writer thread (writer.py) over a slice of
entries, plain tuples in `Entry`'s field order (record.py): the JSON format builds a
msgspec Struct per line (its field order is the line's) and encodes the slice with one
`encode_lines` call, escaping included; Squid's lines are laid out in Python. (Building
the Structs on the request path instead cost the node more, bench.accesslog_cost: +13.0
against +7 µs a request.)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import msgspec

from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL

# Squid's result codes for what the proxy did; refusals are TCP_DENIED as in Squid.
_DENIED: Final = frozenset({401, 402, 403, 407, 509})


class LineFormat(Protocol):
    def encode(self, entries: list[tuple[Any, ...]]) -> bytes:
        """The lines of `entries`, each ending with a newline."""
        ...


def line(fmt: LineFormat, entry: tuple[Any, ...]) -> str:
    """The line of one `Entry` (for tools and tests): the same path as the writer's."""
    return fmt.encode([entry]).decode("utf-8").removesuffix("\n")


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_MILLISECONDS: Final = [f"{n:03d}Z" for n in range(1000)]


class _Clock:
    """ISO 8601 UTC times with milliseconds, the date and time text cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, seconds: float) -> str:
        whole = int(seconds)
        if whole != self._second:
            self._second = whole
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
        return self._prefix + _MILLISECONDS[int((seconds - whole) * 1000)]


def _target(host: str, port: int) -> str:
    """host:port, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


class JsonFormat:
    def __init__(self, node: str, *, paths: bool) -> None:
        self.node = node
        self.paths = paths
        self._clock = _Clock()
        self._encoder = msgspec.json.Encoder()

    def encode(self, entries: list[tuple[Any, ...]]) -> bytes:
        iso, node, paths = self._clock.iso, self.node, self.paths
        return self._encoder.encode_lines([
            JsonLine(
                iso(at),
                node,
                proxy,
                account,
                parent,
                client,
                egress or None,
                method.decode("latin-1"),
                _target(host, port) if host else None,
                (path.decode("latin-1") or None) if paths else msgspec.UNSET,
                status or None,
                bytes_in,
                bytes_out,
                round(duration * 1_000_000) / 1000,  # whole µs, in ms (round(x, 3): 4x)
                outcome,
                error,
                server or None,
            )
            for (at, proxy, account, parent, client, egress, server, method, host, port,
                 path, status, bytes_in, bytes_out, duration, outcome, error) in entries
        ])  # fmt: skip


class SquidFormat:
    def __init__(self, node: str, *, paths: bool) -> None:
        del node  # Squid's format has no field for it
        self.paths = paths

    def encode(self, entries: list[tuple[Any, ...]]) -> bytes:
        return "".join([self._line(*entry) + "\n" for entry in entries]).encode("utf-8", "replace")

    def _line(
        self,
        at: float,
        _proxy: str,
        account: str | None,
        _parent: str | None,
        client: str,
        _egress: str,
        server: str,
        method: bytes,
        host: str,
        port: int,
        path: bytes,
        status: int,
        _in: int,
        bytes_out: int,
        duration: float,
        outcome: str,
        _error: str | None,
    ) -> str:
        if outcome == TUNNEL:
            code = "TCP_TUNNEL"
        elif outcome == ABORTED:
            code = "TCP_MISS_ABORTED"
        elif outcome == ANSWERED:
            code = "TCP_DENIED" if status in _DENIED else "NONE"
        else:
            code = "TCP_MISS"
        text_method = method.decode("latin-1") or "-"
        if not host:
            url = "-"
        elif text_method == "CONNECT":
            url = _target(host, port)
        else:
            url = "http://" + _target(host, port) + (path.decode("latin-1") if self.paths else "")
        hierarchy = f"HIER_DIRECT/{server}" if server else "HIER_NONE/-"
        return (
            f"{at:.3f} {round(duration * 1000):6d} {client or '-'} "
            f"{code}/{status:03d} {bytes_out} {_token(text_method)} {_token(url)} "
            f"{_token(account or '-')} {hierarchy} -"
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
