"""The two line formats: JSON lines (every field) and Squid's native access.log format.

Squid's format (`logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un
%Sh/%<a %mt`) is what calamaris, sarg, GoAccess (`--log-format=SQUID`) and other Squid
tools read. It has no field for the egress address or the proxy's reason: the JSON
format carries those, and `meshproxy admin logs --egress` needs it.

A format is one call, `write(out, entry)`: the entry's line appended to a
`librt.strings.BytesWriter`, mypyc's native byte buffer (a write is a bounds check and a
memcpy, no Python call), run on the request path as each exchange ends (writer.py). The
JSON format keeps, per field, the `,"key":value` text of the values seen (most lines
repeat the one before: the same account, client, egress, target), escaped once by
msgspec; numbers are laid out from tables of digits. About 2.2k instructions a line
against msgspec's 5.4k (a Struct per line and `encode_lines`, the format until session
7; laying the line out as Python str pieces cost 5-6.5k): docs/benchmarks.md.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Final

import msgspec
from librt.strings import BytesWriter
from mypy_extensions import i64

from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL, Entry
from meshproxy.domain.addresses import host_port

# Squid's result codes for what the proxy did; refusals are TCP_DENIED as in Squid.
_DENIED: Final = frozenset({401, 402, 403, 407, 509})


class LineFormat:
    """A format: its `write` called from compiled code (the access log's `add`) is a
    native call through this base class (a Protocol's would be a Python method call)."""

    def write(self, out: BytesWriter, entry: Entry) -> None:
        """Append the line of `entry` to `out`, ending with a newline."""
        raise NotImplementedError

    def encode(self, entries: list[Entry]) -> bytes:
        """The lines of `entries` (for tools and tests)."""
        out = BytesWriter()
        for entry in entries:
            self.write(out, entry)
        return out.getvalue()


def line(fmt: LineFormat, entry: Entry) -> str:
    """The line of one `Entry` (for tools and tests): the same path as the writer's."""
    return fmt.encode([entry]).decode("utf-8").removesuffix("\n")


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_DECIMAL: Final = [str(n).encode() for n in range(1000)]
_PADDED: Final = [f"{n:03d}".encode() for n in range(1000)]
_FRACTIONS: Final = [f".{n:03d}".encode() for n in range(1000)]  # duration_ms's
# A status and the key after it, in one write (0: the line has none).
_STATUSES: Final = [(str(n) if n else "null").encode() + b',"bytes_in":' for n in range(600)]


TARGETS_KEPT: Final = 4096  # hosts whose target text is kept (then all are forgotten)


class _Clock:
    """A JSON line's opening, `{"time":"<ISO 8601 UTC, milliseconds>","node":"<node>"`,
    the date and time text cached per second and the whole text per millisecond (at
    thousands of lines a second, many share one)."""

    def __init__(self, node: str) -> None:
        self._node = b'Z","node":' + msgspec.json.encode(node)
        self._second = -1
        self._prefix = b""
        self._millis = -1
        self._text = b""

    def opening(self, seconds: float) -> bytes:
        whole = int(seconds)
        millis = int((seconds - whole) * 1000)
        if whole != self._second:
            self._second = whole
            self._prefix = time.strftime('{"time":"%Y-%m-%dT%H:%M:%S.', time.gmtime(whole)).encode()
        elif millis == self._millis:
            return self._text
        self._millis = millis
        self._text = self._prefix + _PADDED[millis] + self._node
        return self._text


class _Targets:
    """host:port texts of the hosts seen last: most lines go to a few hosts, and a dict
    look-up costs a fifth of building the text (callgrind: about 200 against 900
    instructions). At most TARGETS_KEPT hosts, each with its last port."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[int, str]] = {}
        self._host = ""
        self._port = -1
        self._text = ""

    def text(self, host: str, port: int) -> str:
        if host is self._host and port == self._port:  # the line before's (same object)
            return self._text
        known = self._texts.get(host)
        if known is not None and known[0] == port:
            text = known[1]
        else:
            text = host_port(host, port)
            if len(self._texts) >= TARGETS_KEPT:
                self._texts.clear()
            self._texts[host] = (port, text)
        self._host, self._port, self._text = host, port, text
        return text


def rounded(value: float) -> int:
    """round(value): half to even, as the built-in (which compiled code calls generically,
    as a Python function; this compiles to a few float operations)."""
    whole = math.floor(value)
    rest = value - whole  # exact: a double minus its floor
    if rest > 0.5 or (rest == 0.5 and whole % 2 == 1):
        whole += 1
    return whole


def _write_int(out: BytesWriter, value: i64) -> None:
    """Decimal digits, three at a time from the tables (no int object, no str)."""
    if value < 0:
        out.write(b"-")
        value = -value
    if value < 1000:
        out.write(_DECIMAL[value])
        return
    _write_int(out, value // 1000)
    out.write(_PADDED[value % 1000])


FIELD_TEXTS_KEPT: Final = 4096  # values a field keeps the text of (then all are forgotten)


class _Field:
    """One JSON field's `,"key":value` text (and `after`, the constant text that follows
    it in the line), kept for the value seen last and the values seen before it: a
    string compare, or a dict look-up, instead of escaping again."""

    def __init__(self, key: str, after: bytes = b"") -> None:
        self._prefix = b',"' + key.encode() + b'":'
        self._after = after
        self.none = self._prefix + b"null" + after
        self._last = ""
        self._last_text = self._prefix + b'""' + after
        self._texts: dict[str, bytes] = {}

    def text(self, value: str | None) -> bytes:
        if value is None:
            return self.none
        if value is self._last or value == self._last:  # (the same object, mostly)
            return self._last_text
        known = self._texts.get(value)
        if known is None:
            known = self._prefix + msgspec.json.encode(value) + self._after
            if len(self._texts) >= FIELD_TEXTS_KEPT:
                self._texts.clear()
            self._texts[value] = known
        self._last, self._last_text = value, known
        return known


class _Who:
    """`,"proxy":..,"account":..,"parent":..` in one text, kept per account (with the
    proxy and the parent it was made for): the same for most lines of a connection, and
    mostly the same string objects (the account's), so `is` decides."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str | None, str | None], bytes] = {}
        self._proxy: str | None = None  # (None: no line yet; a proxy always has a name)
        self._account: str | None = None
        self._parent: str | None = None
        self._text = b""

    def text(self, proxy: str, account: str | None, parent: str | None) -> bytes:
        if proxy is self._proxy and account is self._account and parent is self._parent:
            return self._text
        key = (proxy, account, parent)
        text = self._texts.get(key)
        if text is None:
            text = b',"proxy":%b,"account":%b,"parent":%b' % (
                msgspec.json.encode(proxy), msgspec.json.encode(account),
                msgspec.json.encode(parent),
            )  # fmt: skip
            if len(self._texts) >= FIELD_TEXTS_KEPT:
                self._texts.clear()
            self._texts[key] = text
        self._proxy, self._account, self._parent, self._text = proxy, account, parent, text
        return text


class _Methods:
    """The `,"method":"GET"` texts of the methods seen, by the request's bytes."""

    def __init__(self) -> None:
        self._last = b""
        self._last_text = b',"method":""'
        self._texts: dict[bytes, bytes] = {}

    def text(self, method: bytes) -> bytes:
        if method == self._last:
            return self._last_text
        known = self._texts.get(method)
        if known is None:
            known = b',"method":' + msgspec.json.encode(method.decode("latin-1"))
            if len(self._texts) < 64:  # a client may send any token: keep the first few
                self._texts[method] = known
        self._last, self._last_text = method, known
        return known


class _Ends:
    """`,"outcome":..,"error":..` in one text, by the pair (a few outcomes, the proxy's
    fixed reasons: both mostly the same objects as the line before's)."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, str | None], bytes] = {}
        self._outcome: str | None = None  # (None: no line yet)
        self._error: str | None = None
        self._text = b""

    def text(self, outcome: str, error: str | None) -> bytes:
        if outcome is self._outcome and error is self._error:
            return self._text
        key = (outcome, error)
        text = self._texts.get(key)
        if text is None:
            text = b',"outcome":%b,"error":%b' % (
                msgspec.json.encode(outcome), msgspec.json.encode(error),
            )  # fmt: skip
            if len(self._texts) >= FIELD_TEXTS_KEPT:
                self._texts.clear()
            self._texts[key] = text
        self._outcome, self._error, self._text = outcome, error, text
        return text


class _Sender:
    """`,"proxy":..,"account":..,"parent":..,"client":..` in one text: the line before's
    for the same account and client (most lines of a connection; the egress, which a
    rotating proxy changes every request, is a field of its own)."""

    def __init__(self) -> None:
        self._who = _Who()
        self._client = _Field("client")
        self._last: Entry | None = None  # the entry `_text` was made for
        self._text = b""

    def text(self, entry: Entry) -> bytes:
        last = self._last
        if (
            last is not None
            and entry.proxy is last.proxy
            and entry.account is last.account
            and entry.parent is last.parent
            and entry.client == last.client
        ):
            return self._text
        self._text = self._who.text(entry.proxy, entry.account, entry.parent) + self._client.text(
            entry.client
        )
        self._last = entry
        return self._text


class _Request:
    """`,"method":..,"target":..` (then `after`) in one text: the line before's for the
    same method, host and port (one write instead of two: copying a few bytes costs about
    as much as comparing the fields)."""

    def __init__(self, after: bytes) -> None:
        self._methods = _Methods()
        self._targets = _Targets()
        self._target = _Field("target", after)
        self._method = b""
        self._host = ""
        self._port = -1  # (no line yet)
        self._text = b""

    def text(self, method: bytes, host: str, port: int) -> bytes:
        if port == self._port and host == self._host and method == self._method:
            return self._text
        target = self._target.text(self._targets.text(host, port) if host else None)
        self._text = self._methods.text(method) + target
        self._method, self._host, self._port = method, host, port
        return self._text


class _Tail:
    """`,"outcome":..,"error":..,"server":..}` and the newline in one text: the line
    before's for the same outcome, reason and server."""

    def __init__(self) -> None:
        self._ends = _Ends()
        self._server = _Field("server", b"}\n")
        self._outcome: str | None = None  # (None: no line yet)
        self._error: str | None = None
        self._server_ip = ""
        self._text = b""

    def text(self, outcome: str, error: str | None, server: str) -> bytes:
        if outcome is self._outcome and error is self._error and server == self._server_ip:
            return self._text
        self._text = self._ends.text(outcome, error) + self._server.text(server or None)
        self._outcome, self._error, self._server_ip = outcome, error, server
        return self._text


class JsonFormat(LineFormat):
    """One JSON object a line; its keys in this order (`path` only with `paths`)."""

    def __init__(self, node: str, *, paths: bool) -> None:
        self.paths = paths
        self._clock = _Clock(node)
        self._sender = _Sender()
        self._egress = _Field("egress")
        self._request = _Request(b"" if paths else b',"status":')
        self._path = _Field("path", b',"status":')
        self._tail = _Tail()

    def write(self, out: BytesWriter, entry: Entry) -> None:
        out.write(self._clock.opening(entry.time))
        out.write(self._sender.text(entry))
        out.write(self._egress.text(entry.egress or None))
        out.write(self._request.text(entry.method, entry.host, entry.port))
        if self.paths:
            path = entry.path
            out.write(self._path.text(path.decode("latin-1") if path else None))
        status: i64 = entry.status
        if 0 <= status < 600:
            out.write(_STATUSES[status])
        else:  # only what a parser let through: HTTP's three digits
            _write_int(out, status)
            out.write(b',"bytes_in":')
        _write_int(out, entry.bytes_in)
        out.write(b',"bytes_out":')
        _write_int(out, entry.bytes_out)
        out.write(b',"duration_ms":')  # whole µs, in ms
        micros: i64 = max(rounded(entry.duration * 1_000_000), 0)
        _write_int(out, micros // 1000)
        out.write(_FRACTIONS[micros % 1000])
        out.write(self._tail.text(entry.outcome, entry.error, entry.server))


class SquidFormat(LineFormat):
    def __init__(self, node: str, *, paths: bool) -> None:
        del node  # Squid's format has no field for it
        self.paths = paths
        self._targets = _Targets()

    def write(self, out: BytesWriter, entry: Entry) -> None:
        out.write((self._line(entry) + "\n").encode("utf-8", "replace"))

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
