"""One access-log entry: what the data plane knows when a request or a tunnel ends.

The data plane makes one `Entry` per line (attribute reads only) and hands it to the log,
whose format (formats.py) lays its line out there and then. A class of typed
slots, not a tuple: compiled, its numbers are stored unboxed and each field is read
directly.
"""

from __future__ import annotations

from typing import Final

# What the proxy did with the request (also Squid's result code, formats.py).
RELAYED: Final = "relayed"  # the origin's response went to the client whole
TUNNEL: Final = "tunnel"  # a CONNECT tunnel, from "200 Connection established" to its close
ANSWERED: Final = "answered"  # the proxy answered itself (status and X-ProxyMesh-Error reason)
ABORTED: Final = "aborted"  # the connection ended before the response did


class Entry:
    """The fields of one line, positional in this order (the data plane's call) or by name."""

    __slots__ = (
        "account", "bytes_in", "bytes_out", "client", "duration", "egress", "error", "host",
        "method", "outcome", "parent", "path", "port", "proxy", "server", "status", "time",
    )  # fmt: skip

    def __init__(
        self,
        time: float,  # end, seconds since the epoch
        proxy: str,
        account: str | None,  # username; None before authentication
        parent: str | None,  # the parent's username, for a sub-account
        client: str,  # client IP
        egress: str,  # source IP of the upstream connection ("" when none was opened)
        server: str,  # destination IP connected to ("" when none)
        method: bytes,
        host: str,  # "" when the request could not be parsed
        port: int,
        path: bytes,  # origin-form path of a plain HTTP request (b"" for CONNECT); logged
        #               only with `access_log.paths`
        status: int,  # status sent to the client (0: none)
        bytes_in: int,  # bytes read from the client
        bytes_out: int,  # bytes written to the client
        duration: float,  # seconds from the request head to the end
        outcome: str,  # RELAYED, TUNNEL, ANSWERED or ABORTED
        error: str | None,  # the proxy's own reason (X-ProxyMesh-Error) when it answered
    ) -> None:
        self.time = time
        self.proxy = proxy
        self.account = account
        self.parent = parent
        self.client = client
        self.egress = egress
        self.server = server
        self.method = method
        self.host = host
        self.port = port
        self.path = path
        self.status = status
        self.bytes_in = bytes_in
        self.bytes_out = bytes_out
        self.duration = duration
        self.outcome = outcome
        self.error = error

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS)
        return f"Entry({fields})"


# The fields in the constructor's order.
FIELDS: Final = (
    "time", "proxy", "account", "parent", "client", "egress", "server", "method", "host",
    "port", "path", "status", "bytes_in", "bytes_out", "duration", "outcome", "error",
)  # fmt: skip
