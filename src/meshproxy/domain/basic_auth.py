"""HTTP Basic credentials: one reading of the header for the proxies and the API.

The decoded `user:password` must be UTF-8 (RFC 7617's charset; never guessed at, so a
header cannot mean one account to the API and another, or none, to the proxy) and name a
non-empty username. docs/api.md says so for API callers."""

from __future__ import annotations

import base64
import binascii


def parse_basic(value: bytes | str) -> tuple[str, str] | None:
    """(username, password) of a `Basic` Authorization or Proxy-Authorization value, or
    None. A str is the header as ASGI servers hand it over (its bytes as latin-1)."""
    if isinstance(value, str):
        try:
            value = value.encode("latin-1")
        except UnicodeEncodeError:
            return None
    scheme, _, encoded = value.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    if not colon or not username:
        return None
    return username, password
