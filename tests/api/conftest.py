"""Fixtures of the API tests; see harness.py for the server and client helpers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support.api_server import server_loop, start_server

from .harness import Parent, Running, StartServer, fresh_source

__all__ = ["server_loop", "start_server"]  # fixtures (tests/support/api_server.py)


@pytest.fixture(scope="module")
def api(start_server: StartServer) -> Running:
    """The module's shared server: default settings (require_https on, the ban at 4/10 min/3 h)."""
    return start_server()


@pytest.fixture
def parent(api: Running) -> Iterator[Parent]:
    """A fresh parent account on the default plan, authorized for open and world."""
    yield api.parent()
    api.close_clients()


@pytest.fixture
def client(parent: Parent) -> httpx.Client:
    """The parent's client, from its own loopback source address."""
    return parent.client(source=fresh_source())
