"""The data plane's lines of the access log (meshproxy.accesslog): one when an exchange
ends (relayed, answered by the proxy itself, or aborted), one when a tunnel ends, and one
per SOCKS5 connection (`socks_ended`: method SOCKS5, the HTTP proxy's status for the same
decision, 200 for an opened tunnel). The same ends are counted, log or no log, in the
account's daily request statistics (the meter's `count_request`, domain/stats.py) and in
the node's metrics (`NodeServices.outcomes`, core/outcomes.py).

Each is one `Entry`, whose line the log lays out at once in its buffer (accesslog/writer.py);
a thread of the log writes the buffer out.
Bytes are counted on the client's connection, as the meter charges them: what was read
from the client and written to it since the connection's previous line (so a connection's
lines add up to all its traffic; a pipelined request's bytes may go to the line before).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from librt.time import time as wall_time

from meshproxy.accesslog import AccessLog, Entry
from meshproxy.accesslog.record import ABORTED, ANSWERED, RELAYED, TUNNEL
from meshproxy.domain import stats

if TYPE_CHECKING:
    from meshproxy.proxy.core.directory import AccountState
    from meshproxy.proxy.server.exchange import Exchange
    from meshproxy.proxy.server.listener import Listener


class LineSource(asyncio.Protocol):
    """What of a client connection (connection.ClientConnection, its base) the lines read.

    A base class rather than a Protocol: compiled code reads a Protocol's attributes by
    name, as Python does (a few hundred instructions each, callgrind), and a base class's
    as fields of its struct."""

    access_log: AccessLog | None
    listener: Listener
    loop: asyncio.AbstractEventLoop
    client_ip: str
    received: int  # bytes read from the client and written to it
    sent: int
    logged_received: int  # at the connection's previous line
    logged_sent: int


def exchange_ended(conn: LineSource, exchange: Exchange, *, complete: bool) -> None:
    """`complete`: the exchange finished; else the connection ended first. Answered: the
    proxy sent its own answer (and may have closed the connection after it)."""
    if exchange.error is not None and not exchange.response_started:
        _add(conn, exchange, ANSWERED, stats.outcome(exchange.status, by_proxy=True))
    else:
        counted = stats.outcome(exchange.status, by_proxy=False)
        _add(conn, exchange, RELAYED if complete else ABORTED, counted)


def tunnel_ended(conn: LineSource, exchange: Exchange) -> None:
    _add(conn, exchange, TUNNEL, stats.TUNNELS)


def _add(conn: LineSource, exchange: Exchange, outcome: str, counted: str) -> None:
    # On the request path: attribute reads, one count and one Entry, nothing formatted.
    received, sent = conn.received, conn.sent
    bytes_in, bytes_out = received - conn.logged_received, sent - conn.logged_sent
    conn.logged_received, conn.logged_sent = received, sent
    account, request = exchange.account, exchange.request
    target = request.target if request is not None else None
    services = conn.listener.services
    if account is not None:
        host = target.host if target is not None else ""
        services.meter.count_request(account.id, counted, host, bytes_in + bytes_out)
    outcomes, proxy, error = services.outcomes, conn.listener.name, exchange.error
    answered = outcome == ANSWERED
    outcomes.response(
        proxy, exchange.status, by_proxy=answered or outcome == TUNNEL,
        first_byte=exchange.first_byte - exchange.started if exchange.first_byte else None,
    )
    if answered and error is not None and error.status >= 500:
        outcomes.error(proxy, error.proxy_status)
    log = conn.access_log
    if log is None:
        return
    egress, addresses = exchange.egress, exchange.addresses
    parent = account.parent if account is not None else None
    log.add(
        Entry(
            wall_time(),  # librt's: a native call from compiled code
            proxy,
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
            # A relayed response ended with its last upstream read (this callback's time:
            # one clock read fewer); the other ends are now.
            (exchange.last_seen if outcome == RELAYED else conn.loop.time()) - exchange.started,
            outcome,
            error.reason if error is not None else None,
        )
    )


class SocksTrail:
    """What a SOCKS5 connection's line says, gathered as its handshake goes: one line per
    connection that asked for something (a login or a CONNECT), written when it ends."""

    __slots__ = ("egress", "error_type", "host", "logged", "port", "reason", "server", "status")

    def __init__(self) -> None:
        self.host = ""
        self.port = 0
        self.server = ""  # the destination IP chosen
        self.egress = ""  # the source IP of the connection to it
        self.status = 0  # 200 when the tunnel opened, else the HTTP proxy's status for it
        self.reason: str | None = None
        self.error_type = ""  # the refusal's RFC 9209 type (for the metrics)
        self.logged = False

    def refused(self, status: int, reason: str, error_type: str = "") -> None:
        if not self.status:
            self.status, self.reason, self.error_type = status, reason, error_type


class SocksConnection(Protocol):
    """What of a SOCKS5 client connection (socks.SocksConnection) its line reads."""

    access_log: AccessLog | None
    listener: Listener
    loop: asyncio.AbstractEventLoop
    client_ip: str
    account: AccountState | None
    received: int
    sent: int
    started: float
    trail: SocksTrail


def socks_ended(conn: SocksConnection) -> None:
    """Once per connection (later calls do nothing): the tunnel closed, the handshake was
    refused, or the client left."""
    trail = conn.trail
    if trail.logged or not (trail.status or trail.host):
        return
    trail.logged = True
    account = conn.account
    opened = trail.status == 200
    services = conn.listener.services
    if account is not None:
        counted = stats.outcome(trail.status, by_proxy=True, tunnel=opened)
        services.meter.count_request(account.id, counted, trail.host, conn.received + conn.sent)
    services.outcomes.response(conn.listener.name, trail.status, by_proxy=True)
    if trail.status >= 500 and trail.error_type:
        services.outcomes.error(conn.listener.name, trail.error_type)
    log = conn.access_log
    if log is None:
        return
    parent = account.parent if account is not None else None
    # Opened (however it ended later), refused, or left during the handshake.
    outcome = TUNNEL if opened else (ANSWERED if trail.status else ABORTED)
    log.add(
        Entry(
            wall_time(),  # librt's: a native call from compiled code
            conn.listener.name,
            account.username if account is not None else None,
            parent.username if parent is not None else None,
            conn.client_ip,
            trail.egress,
            trail.server,
            b"SOCKS5",
            trail.host,
            trail.port,
            b"",
            trail.status,
            conn.received,
            conn.sent,
            conn.loop.time() - conn.started,
            outcome,
            trail.reason,
        )
    )
