"""The two line formats: JSON lines (every field) and Squid's native access.log format.

Squid's format (`logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un
%Sh/%<a %mt`) is what calamaris, sarg, GoAccess (`--log-format=SQUID`) and other Squid
tools read. It has no field for the egress address or the proxy's reason: the JSON
format carries those, and `meshproxy admin logs --egress` needs it.

Both run on the writer thread, but in the proxy's process and under its GIL, so they are
written for speed (a few µs a line, not json.dumps of a dict): fields are laid out with
one f-string, only strings a client could have shaped are checked for escaping, and the
time's text is computed once per second.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL

Formatter = Callable[[tuple[Any, ...]], str]  # an Entry (or the plain tuple) -> one line

# Squid's result codes for what the proxy did; refusals are TCP_DENIED as in Squid.
_DENIED = frozenset({401, 402, 403, 407, 509})


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class _Clock:
    """ISO 8601 UTC times with milliseconds, the date and time text cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, seconds: float) -> str:
        whole = int(seconds)
        if whole != self._second:
            self._second = whole
            self._prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return f"{self._prefix}{int((seconds - whole) * 1000):03d}Z"


def _plain(text: str) -> bool:
    """Needs no JSON escaping (printable ASCII without quote or backslash)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _string(text: str | None) -> str:
    if text is None:
        return "null"
    return f'"{text}"' if _plain(text) else json.dumps(text)


def _target(host: str, port: int) -> str:
    """host:port, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def json_formatter(node: str, *, paths: bool) -> Formatter:
    node_json = json.dumps(node)
    clock = _Clock()

    def line(entry: tuple[Any, ...]) -> str:
        (at, proxy, account, parent, client, egress, server, method, host, port, path,
         status, bytes_in, bytes_out, duration, outcome, error) = entry  # fmt: skip
        # IP addresses, the proxy's name, the outcome and the host (a DNS name or an IP
        # literal, proxy/core/target.py) need no escaping.
        egress_json = f'"{egress}"' if egress else "null"
        server_json = f'"{server}"' if server else "null"
        target_json = f'"{_target(host, port)}"' if host else "null"
        path_field = ""
        if paths:
            path_field = f'"path":{_string(path.decode("latin-1") or None)},'
        return (
            f'{{"time":"{clock.iso(at)}","node":{node_json},"proxy":"{proxy}",'
            f'"account":{_string(account)},"parent":{_string(parent)},"client":"{client}",'
            f'"egress":{egress_json},"method":{_string(method.decode("latin-1"))},'
            f'"target":{target_json},{path_field}'
            f'"status":{status or "null"},"bytes_in":{bytes_in},"bytes_out":{bytes_out},'
            f'"duration_ms":{duration * 1000:.3f},"outcome":"{outcome}",'
            f'"error":{_string(error)},"server":{server_json}}}'
        )

    return line


def squid_formatter(node: str, *, paths: bool) -> Formatter:
    del node  # Squid's format has no field for it

    def line(entry: tuple[Any, ...]) -> str:
        (at, _proxy, account, _parent, client, _egress, server, method, host, port, path,
         status, _in, bytes_out, duration, outcome, _error) = entry  # fmt: skip
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
            url = "http://" + _target(host, port) + (path.decode("latin-1") if paths else "")
        hierarchy = f"HIER_DIRECT/{server}" if server else "HIER_NONE/-"
        return (
            f"{at:.3f} {round(duration * 1000):6d} {client or '-'} "
            f"{code}/{status:03d} {bytes_out} {_token(text_method)} {_token(url)} "
            f"{_token(account or '-')} {hierarchy} -"
        )

    return line


def _token(text: str) -> str:
    """One space-free field (Squid's readers split on whitespace)."""
    if text.isascii() and text.isprintable() and " " not in text:
        return text or "-"
    return "".join(c if "!" <= c <= "~" else f"%{ord(c):02X}" for c in text) if text else "-"


FORMATS: dict[str, Callable[..., Formatter]] = {
    "json": json_formatter,
    "squid": squid_formatter,
}
