"""Header names and lines the request and response rules share (RFC 9110 7.6.1, 8.6)."""

from __future__ import annotations

import re
from typing import Final

# A Content-Length value: digits only, at most 18 (any such number fits in 64 bits).
DIGITS: Final = re.compile(rb"[0-9]{1,18}")
# Hop-by-hop: meant for one connection, never forwarded (with whatever Connection names).
HOP_BY_HOP: Final = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"upgrade"}
)
# The message's framing: validated, then written again from the validated value.
FRAMING: Final = frozenset({b"transfer-encoding", b"content-length"})


def ip_not_found_line(address: str) -> bytes:
    """The answer's note that the X-ProxyMesh-IP / Prefer-IP asked for is not in the pool."""
    return b"X-ProxyMesh-IP-Not-Found: " + address.encode() + b"\r\n"
