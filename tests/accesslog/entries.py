"""Entries as the data plane builds them."""

from __future__ import annotations

from typing import Any

from meshproxy.accesslog.record import RELAYED, Entry

BASE: dict[str, Any] = dict(
    time=1_764_754_262.125,
    proxy="open",
    account="alice",
    parent=None,
    client="127.0.0.1",
    egress="127.0.0.2",
    server="127.0.0.1",
    method=b"GET",
    host="example.test",
    port=80,
    path=b"/secret?token=abc",
    status=200,
    bytes_in=100,
    bytes_out=2000,
    duration=0.0125,
    outcome=RELAYED,
    error=None,
)


def entry(**fields: Any) -> Entry:
    return Entry(**{**BASE, **fields})
