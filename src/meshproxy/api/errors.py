"""Every error answer is JSON: field -> messages for 400, {"error": message} otherwise.
No stack trace ever reaches a client; the 500 handler logs it instead."""

from __future__ import annotations

import logging
import math

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from meshproxy.api.auth import REALM, Unauthorized
from meshproxy.control.errors import (
    RETRY_AFTER_SECONDS,
    ControlError,
    FormInvalid,
    Unavailable,
)
from meshproxy.store import StoreUnavailable
from meshproxy.store.errors import STORE_DOWN

log = logging.getLogger("meshproxy.api")

SERVER_ERROR = "Internal server error. Please try again; if it persists, contact support."


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


async def _control_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlError)
    if isinstance(exc, FormInvalid):
        return JSONResponse(exc.errors, status_code=400)
    headers = _retry_after(exc.retry_after) if isinstance(exc, Unavailable) else None
    return error_response(exc.status, exc.message, headers)


async def _unauthorized(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unauthorized)
    headers = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
    if exc.retry_after is not None:
        headers.update(_retry_after(exc.retry_after))
    return error_response(401, exc.message, headers)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("store unavailable: %s", exc)
    return error_response(503, STORE_DOWN, _retry_after(RETRY_AFTER_SECONDS))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return error_response(exc.status_code, exc.detail, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    # The server logs the traceback (Starlette re-raises after this answer is sent).
    return error_response(500, SERVER_ERROR)


EXCEPTION_HANDLERS: dict[type[Exception] | int, ExceptionHandler] = {
    ControlError: _control_error,
    Unauthorized: _unauthorized,
    StoreUnavailable: _store_unavailable,
    HTTPException: _http_exception,
    Exception: _server_error,
}
