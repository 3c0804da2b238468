"""A real uvicorn server on 127.0.0.1 in a background thread, and how to launch chromium:
for the browser tests and the screenshot script (so the screenshots show what they test)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Generator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from support.polling import eventually

START_TIMEOUT = 10.0
# Debian's chromium, never a browser build downloaded by `playwright install`.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _ThreadServer(uvicorn.Server):
    """uvicorn without signal handlers: they belong to the main thread."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LiveServer:
    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        self._server = _ThreadServer(config)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.bind(("127.0.0.1", 0))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> LiveServer:
        self._thread.start()

        def started() -> bool:
            if not self._thread.is_alive():
                raise RuntimeError("the test server's thread ended before it started")
            return self._server.started

        if not eventually(started, START_TIMEOUT, interval=0.01):
            raise RuntimeError("the test server did not start")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT)
        self._socket.close()
