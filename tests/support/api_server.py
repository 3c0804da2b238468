"""A real API server on its own loop thread, for the API tests and any other folder's
(`server_loop`, `start_server`; the client and server helpers are api/harness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.routing import BaseRoute

from api.harness import Clock, Loop, Running, StartServer, settings_for
from meshproxy.api import create_app
from meshproxy.api.server import ApiServer
from meshproxy.store import Store


@pytest.fixture(scope="session")
def server_loop() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def start_server(
    server_loop: Loop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """start_server(store=None, clock=None, mounts=(), **settings overrides) -> Running."""
    running: list[tuple[Running, ApiServer]] = []

    def start(
        store: Store | None = None,
        clock: Clock | None = None,
        mounts: Sequence[BaseRoute] = (),
        **overrides: Any,
    ) -> Running:
        directory = tmp_path_factory.mktemp("api")
        settings = settings_for(directory / "data", **overrides)
        store = store or Store.open(f"sqlite:///{directory / 'store.sqlite3'}")
        clock = clock or Clock()
        app = create_app(settings, store, clock=clock, mounts=mounts)
        server = ApiServer(settings, app)
        ports = server_loop.run(server.start())
        result = Running(settings, store, ports, clock, settings.data_dir / "tls" / "api-cert.pem")
        running.append((result, server))
        return result

    yield start
    for result, _ in running:
        result.close_clients()

    async def stop_all() -> None:
        await asyncio.gather(*(server.stop() for _, server in running))

    server_loop.run(stop_all())
    for result, _ in running:
        result.store.close()
