"""ACK at once what was read from a peer that may be waiting for it.

Linux delays an ACK (40 ms and more) on a connection it takes for request/response, in
the hope of sending it with the answer. A proxy's connections all look like that: it
sent a request (or relayed a client's bytes) and reads the reply. But a sender whose
send buffer is full cannot send the rest of its reply until an ACK frees room, so each
delayed ACK is a 40 ms stall in the middle of a response: on loopback (a 64 KiB MSS) it
was the 64 KiB p99 of `bench.proxies` (~36 against ~4 ms), and an origin with a small
send buffer stalls on every response (tests/proxy/test_origin_acks.py).

So after a read with more to come, the driver sets TCP_QUICKACK, which sends a pending
ACK now (one setsockopt per read, never per request on a response read whole). The
option is not sticky: Linux goes back to delaying, hence once per read.
"""

from __future__ import annotations

import socket
from typing import Any, Final

# Linux only; 0 where there is no such option (and then nothing is done).
QUICKACK: Final = getattr(socket, "TCP_QUICKACK", 0)
_TCP_FAMILIES: Final = (socket.AF_INET, socket.AF_INET6)


def acks(sock: Any) -> bool:
    """Whether `sock` takes TCP_QUICKACK: TCP where the option exists (an https://
    upstream's relay is a Unix socket pair, dial.py)."""
    return bool(QUICKACK) and sock is not None and sock.family in _TCP_FAMILIES


def socket_of(transport: Any) -> Any:
    """The socket to ACK on for `transport`, or None when it takes no TCP_QUICKACK."""
    sock = transport.get_extra_info("socket")
    return sock if acks(sock) else None


def ack_now(sock: Any) -> None:
    """Send the ACK for what has been read from `sock` now, not delayed."""
    sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
