"""The admin listener (loopback by default): GET /healthz, /readyz and /metrics.

A deliberately small HTTP/1.1 server on asyncio streams (one request per connection,
bounded head size and time), so a proxy-only node needs no web framework for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from meshproxy.ops.metrics import registry_for, render
from meshproxy.ops.status import NodeStatus

log = logging.getLogger("meshproxy.ops")

MAX_HEAD = 8192
HEAD_TIMEOUT = 5.0
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdminServer:
    def __init__(self, status: NodeStatus, host: str, port: int) -> None:
        self.status = status
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._registry = registry_for(status, asyncio.get_running_loop())

    async def start(self) -> int:
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True, limit=MAX_HEAD
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            method, path = _request_line(head)
            status, content_type, body = await self._answer(method, path)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        reason = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            503: "Service Unavailable",
        }[status]
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + (body if method != "HEAD" else b"")
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        path = path.split("?", 1)[0]
        if path == "/metrics":
            return 200, METRICS_TYPE, render(self._registry)
        if path == "/healthz":
            return 200, "application/json", _json(self.status.liveness())
        if path == "/readyz":
            ready, report = await self.status.readiness()
            return (200 if ready else 503), "application/json", _json(report)
        return 404, "text/plain", b"not found\n"


def _request_line(head: bytes) -> tuple[str, str]:
    line = head.split(b"\r\n", 1)[0].decode("ascii")
    method, path, _version = line.split(" ")
    return method, path


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode() + b"\n"
