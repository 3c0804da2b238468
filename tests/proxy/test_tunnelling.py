"""The tunnel driver (proxy/server/tunnelling.py) on its own, over real loopback sockets:
either relay carries both ways and every byte is charged to the connection's account,
the charge that reaches a limit cuts the connection, and a connection that closed while
its transport relay was being set up gets none. (The HTTP CONNECT and SOCKS5 tunnels
end to end: test_connect.py, test_socks.py, test_splice.py.)"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import uvloop

from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.machine import Clocks
from meshproxy.proxy.server import splice
from meshproxy.proxy.server.tunnelling import TunnelDriver

from .test_core_directory import directory, record, view
from .test_machine_quota_and_tunnels import near_limit
from .test_splice import receive_until_eof, send_and_half_close, tcp_pair

T = TypeVar("T")


def run(main: Callable[[], Awaitable[T]]) -> T:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(asyncio.wait_for(main(), 20))


class Owner:
    """A client connection as the driver sees it (tunnelling.TunnelOwner), recording what
    it is told."""

    def __init__(self, account: AccountState | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self.account = account
        self.received = self.sent = 0
        self.clocks = Clocks(0.0)
        self.started: list[TunnelDriver] = []
        self.ended = self.aborted = 0
        self.metered: list[tuple[int, int | None, int]] = []
        self.tunnel = TunnelDriver(self, self._meter)

    def _meter(self, account_id: int, parent_id: int | None, nbytes: int) -> None:
        self.metered.append((account_id, parent_id, nbytes))

    def abort(self) -> None:
        self.aborted += 1
        self.closed = True
        self.tunnel.abort()

    def tunnel_started(self, tunnel: TunnelDriver) -> None:
        self.started.append(tunnel)

    def tunnel_ended(self) -> None:
        self.ended += 1
        self.closed = True


async def _client_transport(sock: socket.socket) -> asyncio.Transport:
    """The proxy's end of a client connection, in a transport as a listener's would be."""
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
        asyncio.Protocol, sock
    )
    transport.set_write_buffer_limits(high=0)
    return transport


def _alice() -> AccountState:
    return directory(view(record(1, "alice"))).by_username["alice"]


@pytest.mark.parametrize("use_splice", [True, False], ids=["splice", "transports"])
def test_either_relay_carries_both_ways_and_charges_every_byte(
    monkeypatch: pytest.MonkeyPatch, use_splice: bool
) -> None:
    if use_splice and not splice.AVAILABLE:
        pytest.skip("splice(2) is Linux only")
    monkeypatch.setattr(splice, "AVAILABLE", use_splice)
    up, down = os.urandom(1_000_003), os.urandom(2_000_001)
    account = _alice()

    async def main() -> tuple[bytes, bytes, Owner]:
        app, client_side = tcp_pair()
        origin, upstream_side = tcp_pair()
        owner = Owner(account)
        await owner.tunnel.carry(await _client_transport(client_side), upstream_side)
        got_up, got_down, _, _ = await asyncio.gather(
            receive_until_eof(origin),
            receive_until_eof(app),
            send_and_half_close(app, up),
            send_and_half_close(origin, down),
        )
        for _ in range(100):  # both ends' closes, reported within a few loop turns
            if owner.ended:
                break
            await asyncio.sleep(0.01)
        app.close()
        origin.close()
        return got_up, got_down, owner

    got_up, got_down, owner = run(main)
    assert got_up == up and got_down == down
    assert owner.started == [owner.tunnel] and owner.ended and not owner.aborted
    assert (owner.received, owner.sent) == (len(up), len(down))
    assert account.monthly_bytes == len(up) + len(down)
    assert sum(n for _, _, n in owner.metered) == len(up) + len(down)
    assert {(a, p) for a, p, _ in owner.metered} == {(account.id, account.parent_id)}
    assert owner.clocks.last_active > 0.0  # the idle rule counts from the last bytes


def test_the_charge_that_reaches_the_limit_cuts_the_connection_once_it_returns() -> None:
    async def main() -> tuple[int, int, int]:
        owner = Owner(near_limit(1000))
        owner.tunnel.charge(600)
        await asyncio.sleep(0)
        before = owner.aborted
        owner.tunnel.charge(600)  # past the limit: cut, after this call
        during = owner.aborted
        await asyncio.sleep(0)
        return before, during, owner.aborted

    assert run(main) == (0, 0, 1)


def test_a_connection_closed_while_its_relay_was_set_up_gets_no_tunnel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(splice, "AVAILABLE", False)

    async def main() -> tuple[bytes, Owner]:
        app, client_side = tcp_pair()
        origin, upstream_side = tcp_pair()
        owner = Owner(_alice())
        owner.closed = True  # (the client left, or the sweep closed it, meanwhile)
        await owner.tunnel.carry(await _client_transport(client_side), upstream_side)
        got = await receive_until_eof(origin)  # the upstream is closed, not relayed
        app.close()
        origin.close()
        return got, owner

    got, owner = run(main)
    assert got == b"" and owner.started == [] and owner.tunnel.relay is None
