"""The admin listener (loopback by default): GET /healthz, /readyz and /metrics.

The first worker of a node with `--workers N` answers /metrics for every worker (the
others' own figures come from their listeners' `/metrics?local`: ops/workers.py).

A deliberately small HTTP/1.1 server on asyncio streams (one request per connection,
bounded head size and time), so a proxy-only node needs no web framework for it.
Whatever arrives, the connection gets a status line or a clean close: a connection closed
before its first byte (a load balancer's TCP check) is closed without an answer; anything
that is not `METHOD /path HTTP/1.x` followed by a blank line gets 400; a failure while
answering is logged and answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from meshproxy.ops.status import NodeStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger("meshproxy.ops")

MAX_HEAD = 8192
HEAD_TIMEOUT = 5.0
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class AdminServer:
    def __init__(
        self, status: NodeStatus, host: str, port: int, peers: Sequence[tuple[int, int]] = ()
    ) -> None:
        self.status = status
        self.host = host
        self.port = port
        self.peers = peers  # (worker index, admin port) of the node's other workers
        self._server: asyncio.Server | None = None
        self._registry: CollectorRegistry | None = None  # made at the first scrape

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
            answer = await self._read_and_answer(reader)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        except Exception:  # one bad connection never reaches the loop's handler
            log.exception("admin listener: answering a request failed")
        finally:
            writer.close()

    async def _read_and_answer(self, reader: asyncio.StreamReader) -> bytes | None:
        """The whole response to one connection, or None for a connection closed before
        it sent a byte (a load balancer's TCP health check): nothing to answer."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            method, path = _request_line(head)
        except asyncio.IncompleteReadError as error:
            if not error.partial:
                return None
            return _response(400, "text/plain", b"bad request\n")
        except (asyncio.LimitOverrunError, TimeoutError, ValueError):
            return _response(400, "text/plain", b"bad request\n")
        try:
            status, content_type, body = await self._answer(method, path)
        except Exception:  # said as a 500, and logged
            log.exception("admin listener: %s %s failed", method, path)
            status, content_type, body = 500, "text/plain", b"internal error\n"
        return _response(status, content_type, body if method != "HEAD" else b"", len(body))

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        path, _, query = path.partition("?")
        if path == "/metrics":
            return 200, METRICS_TYPE, await self._metrics(local=query == "local")
        if path == "/healthz":
            return 200, "application/json", _json(self.status.liveness())
        if path == "/readyz":
            ready, report = await self.status.readiness()
            return (200 if ready else 503), "application/json", _json(report)
        return 404, "text/plain", b"not found\n"


    async def _metrics(self, *, local: bool) -> bytes:
        # prometheus_client is imported at the first scrape, not at start: its package
        # loads http.server, email, urllib.request, wsgiref and gzip with it (about 2.5 MiB
        # of an idle node's RSS, docs/benchmarks.md), and a node nobody scrapes needs none.
        from meshproxy.ops.metrics import registry_for, render
        from meshproxy.ops.workers import local_metrics, merge

        if self._registry is None:
            self._registry = registry_for(self.status, asyncio.get_running_loop())
        own = render(self._registry)
        if local or not self.peers:
            return own
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        theirs = await asyncio.gather(*(local_metrics(host, port) for _, port in self.peers))
        labelled = [(str(index), text) for (index, _), text in zip(self.peers, theirs, strict=True)]
        return merge([("0", own.decode()), *labelled])


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _request_line(head: bytes) -> tuple[str, str]:
    """(method, path) of an `METHOD /path HTTP/1.x` line; ValueError for anything else
    (non-ASCII bytes included: UnicodeDecodeError is a ValueError)."""
    line = head.split(b"\r\n", 1)[0].decode("ascii")
    method, path, version = line.split(" ")
    if not method.isalpha() or not path.startswith("/") or not version.startswith("HTTP/1."):
        raise ValueError(f"not a request line: {line!r}")
    return method, path


def _response(status: int, content_type: str, body: bytes, length: int | None = None) -> bytes:
    """A complete response that closes the connection; `length` for HEAD (no body sent)."""
    size = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status} {REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True).encode() + b"\n"
