"""/healthz and /readyz on an API node's own port (for its load balancer); mounted by
the cli before the dashboard. /metrics stays on the admin listener (loopback)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from meshproxy.ops.status import NodeStatus


def health_routes(status: NodeStatus) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse(status.liveness())

    async def readyz(request: Request) -> Response:
        ready, report = await status.readiness()
        headers = {} if ready else {"Retry-After": "5"}
        return JSONResponse(report, status_code=200 if ready else 503, headers=headers)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/readyz", readyz, methods=["GET"])]
