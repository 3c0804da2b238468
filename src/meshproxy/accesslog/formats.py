"""The two line formats: JSON lines (every field) and Squid's native access.log format.

Squid's format (`logformat squid`: `%ts.%03tu %6tr %>a %Ss/%03>Hs %<st %rm %ru %[un
%Sh/%<a %mt`) is what calamaris, sarg, GoAccess (`--log-format=SQUID`) and other Squid
tools read. It has no field for the egress address or the proxy's reason: the JSON
format carries those, and `meshproxy admin logs --egress` needs it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from meshproxy.accesslog.record import ABORTED, ANSWERED, TUNNEL, Entry, target

Formatter = Callable[[Entry], str]

# Squid's result codes for what the proxy did; refusals are TCP_DENIED as in Squid.
_DENIED = frozenset({401, 402, 403, 407, 509})


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def json_formatter(node: str, *, paths: bool) -> Formatter:
    def line(entry: Entry) -> str:
        record: dict[str, object] = {
            "time": iso_time(entry.time),
            "node": node,
            "proxy": entry.proxy,
            "account": entry.account,
            "parent": entry.parent,
            "client": entry.client,
            "egress": entry.egress or None,
            "method": entry.method.decode("latin-1"),
            "target": target(entry) if entry.host else None,
        }
        if paths:
            record["path"] = entry.path.decode("latin-1") or None
        record.update(
            status=entry.status or None,
            bytes_in=entry.bytes_in,
            bytes_out=entry.bytes_out,
            duration_ms=round(entry.duration * 1000, 3),
            outcome=entry.outcome,
            error=entry.error,
            server=entry.server or None,
        )
        return json.dumps(record, separators=(",", ":"))

    return line


def squid_formatter(node: str, *, paths: bool) -> Formatter:
    del node  # Squid's format has no field for it

    def line(entry: Entry) -> str:
        if entry.outcome == TUNNEL:
            code = "TCP_TUNNEL"
        elif entry.outcome == ABORTED:
            code = "TCP_MISS_ABORTED"
        elif entry.outcome == ANSWERED:
            code = "TCP_DENIED" if entry.status in _DENIED else "NONE"
        else:
            code = "TCP_MISS"
        method = entry.method.decode("latin-1") or "-"
        if not entry.host:
            url = "-"
        elif method == "CONNECT":
            url = target(entry)
        else:
            url = "http://" + target(entry) + (entry.path.decode("latin-1") if paths else "")
        hierarchy = f"HIER_DIRECT/{entry.server}" if entry.server else "HIER_NONE/-"
        return (
            f"{entry.time:.3f} {round(entry.duration * 1000):6d} {entry.client or '-'} "
            f"{code}/{entry.status:03d} {entry.bytes_out} {_token(method)} {_token(url)} "
            f"{_token(entry.account or '-')} {hierarchy} -"
        )

    return line


def _token(text: str) -> str:
    """One space-free field (Squid's readers split on whitespace)."""
    return "".join(c if "!" <= c <= "~" else f"%{ord(c):02X}" for c in text) if text else "-"


FORMATS: dict[str, Callable[..., Formatter]] = {
    "json": json_formatter,
    "squid": squid_formatter,
}
