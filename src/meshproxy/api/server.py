"""Run the API with uvicorn on the caller's event loop: the HTTPS listener and, when
`api.http_port` is set, a plain-HTTP one (which answers 302 when HTTPS is required, and
serves the app otherwise). Port 0 binds a free port; `ApiServer.ports` tells which."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from meshproxy.api.tls import ensure_certificate
from meshproxy.config import Settings

log = logging.getLogger("meshproxy.api")


@dataclass(frozen=True)
class ApiPorts:
    https: int  # the main listener (plain HTTP too when `api.tls` is off)
    http: int | None


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the hosting process owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # An idle keep-alive connection is aborted, not closed: a TLS close waits for the
        # client's close_notify, which an idle client never sends, and uvicorn's graceful
        # shutdown would time out on it. Requests under way still finish.
        for connection in list(self.server_state.connections):
            cycle = getattr(connection, "cycle", None)
            transport = getattr(connection, "transport", None)
            if transport is not None and (cycle is None or cycle.response_complete):
                transport.abort()
        await super().shutdown(sockets)


def _bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when
    # the socket says it is TCP; without it Nagle adds 40 ms to every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # several worker processes share the port (the kernel balances)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and host == "::":
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # dual stack
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _config(app: ASGIApp, cert: tuple[Path, Path] | None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        proxy_headers=False,  # X-Forwarded-* are judged by the app (trusted_proxies)
        server_header=False,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        ssl_certfile=str(cert[0]) if cert else None,
        ssl_keyfile=str(cert[1]) if cert else None,
    )


class ApiServer:
    def __init__(self, settings: Settings, app: ASGIApp, *, reuse_port: bool = False) -> None:
        self.settings = settings
        self.app = app
        self.reuse_port = reuse_port
        self._servers: list[tuple[_EmbeddedServer, socket.socket]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.ports: ApiPorts | None = None

    async def start(self) -> ApiPorts:
        api = self.settings.api
        cert = await asyncio.to_thread(ensure_certificate, self.settings) if api.tls else None
        main = _bind(api.listen, api.https_port, reuse_port=self.reuse_port)
        self._servers.append((_EmbeddedServer(_config(self.app, cert)), main))
        http_port = None
        if api.http_port is not None and api.tls:
            plain = _bind(api.listen, api.http_port, reuse_port=self.reuse_port)
            self._servers.append((_EmbeddedServer(_config(self.app, None)), plain))
            http_port = plain.getsockname()[1]
        self.ports = ApiPorts(https=main.getsockname()[1], http=http_port)
        _tell_app_https_port(self.app, self.ports.https)
        for server, sock in self._servers:
            self._tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        while not all(server.started for server, _ in self._servers):
            done = [task for task in self._tasks if task.done()]
            if done:
                await done[0]  # raises the failure
                raise RuntimeError("the API server stopped while starting")
            await asyncio.sleep(0.01)
        return self.ports

    async def wait(self) -> None:
        """Until a listener stops (raising its failure). Cancelling this wait leaves the
        listeners running (asyncio.wait does not cancel them): `stop` ends them gracefully."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _tell_app_https_port(app: ASGIApp, port: int) -> None:
    state = getattr(app, "state", None)
    target = getattr(state, "https_target", None) if state is not None else None
    if target is not None:
        target.port = port


async def serve_api(
    settings: Settings, app: ASGIApp, *, ready: Callable[[ApiPorts], None] | None = None
) -> None:
    """Serve until cancelled (then shut down gracefully). `ready` gets the bound ports."""
    server = ApiServer(settings, app)
    try:
        ports = await server.start()
        log.info("API listening on https port %s, http port %s", ports.https, ports.http)
        if ready is not None:
            ready(ports)
        await server.wait()
    finally:
        await asyncio.shield(server.stop())
