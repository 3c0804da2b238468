"""The data plane's lines of the access log (meshproxy.accesslog): one when an exchange
ends (relayed, answered by the proxy itself, or aborted) and one when a tunnel ends.

Each is one tuple appended to the log's bounded queue; the writer thread does the rest.
Bytes are counted on the client's connection, as the meter charges them: what was read
from the client and written to it since the connection's previous line (so a connection's
lines add up to all its traffic; a pipelined request's bytes may go to the line before).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Protocol

from meshproxy.accesslog import AccessLog
from meshproxy.accesslog.record import ABORTED, ANSWERED, RELAYED, TUNNEL

if TYPE_CHECKING:
    from meshproxy.proxy.server.exchange import Exchange
    from meshproxy.proxy.server.services import Listener


class Connection(Protocol):
    """What of a client connection (connection.ClientConnection) its lines read."""

    access_log: AccessLog | None
    listener: Listener
    loop: asyncio.AbstractEventLoop
    client_ip: str
    received: int
    sent: int
    logged_received: int
    logged_sent: int


def exchange_ended(conn: Connection, exchange: Exchange, *, complete: bool) -> None:
    """`complete`: the exchange finished; else the connection ended first. Answered: the
    proxy sent its own answer (and may have closed the connection after it)."""
    if conn.access_log is not None:
        if exchange.error is not None and not exchange.response_started:
            _add(conn, exchange, ANSWERED)
        else:
            _add(conn, exchange, RELAYED if complete else ABORTED)


def tunnel_ended(conn: Connection, exchange: Exchange) -> None:
    if conn.access_log is not None:
        _add(conn, exchange, TUNNEL)


def _add(conn: Connection, exchange: Exchange, outcome: str) -> None:
    # On the request path: attribute reads and one tuple, nothing formatted.
    received, sent = conn.received, conn.sent
    bytes_in, bytes_out = received - conn.logged_received, sent - conn.logged_sent
    conn.logged_received, conn.logged_sent = received, sent
    account, request, egress = exchange.account, exchange.request, exchange.egress
    error, addresses = exchange.error, exchange.addresses
    parent = account.parent if account is not None else None
    target = request.target if request is not None else None
    log = conn.access_log
    assert log is not None
    log.add(
        (
            time.time(),
            conn.listener.name,
            account.username if account is not None else None,
            parent.username if parent is not None else None,
            conn.client_ip,
            exchange.local_ip or (egress.address or "" if egress is not None else ""),
            addresses[0] if addresses is not None else "",
            exchange.head.method,
            target.host if target is not None else "",
            target.port if target is not None else 0,
            target.path if target is not None else b"",
            exchange.status,
            bytes_in,
            bytes_out,
            conn.loop.time() - exchange.started,
            outcome,
            error.reason if error is not None else None,
        )
    )
