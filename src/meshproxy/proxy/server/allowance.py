"""Cutting a connection whose account has spent its allowance, at charge time.

The sweep checks quotas every `quota_check_interval`; a single fast connection would move
a second's worth of bytes past a limit meanwhile (230 MB/s: +16.6 % of a 1 GB limit). So
every charge asks the account (`AccountState.charge`), and the charge that reaches a
limit ends its connection before that connection reads again: a cut within one read
buffer of the limit (spliced tunnels read at most the allowance left, see splice.py).
The cut is scheduled, not done in the middle of the write path that charged (that code
goes on with the connection it holds); meanwhile what is sent to the client is cut at the
limit (`within_allowance`), however many reads the loop hands over before the cut runs.
The rules themselves are pure, in core/quota.py.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from meshproxy.proxy.core.directory import AccountState
from meshproxy.proxy.core.quota import allowed


class _Cuttable(Protocol):
    closed: bool

    def abort(self) -> None: ...


def within_allowance(
    connection: _Cuttable, loop: asyncio.AbstractEventLoop, account: AccountState, size: int
) -> int | None:
    """How much of `size` bytes may still go to or from the client of a limited account:
    None for all of it, else the part up to the limit (and the connection is cut). The
    loop may hand a connection many reads before the cut runs (libuv reads a ready socket
    up to 32 times in a row); none of them passes the limit."""
    allowed_size = allowed(account.allowance(), size)
    if allowed_size is not None:
        cut_soon(connection, loop)
    return allowed_size


def cut_soon(connection: _Cuttable, loop: asyncio.AbstractEventLoop) -> None:
    """End `connection` at once, after the callback that charged it returns."""
    if not connection.closed:
        loop.call_soon(_cut, connection)


def _cut(connection: _Cuttable) -> None:
    if not connection.closed:
        connection.abort()
