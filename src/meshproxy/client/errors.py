"""The client's exceptions: one class per error status of the ProxyMesh API, plus network errors.

Every API error carries the HTTP status, the response headers and the decoded body (JSON when
the server sent JSON, else text), so callers can act on what the server said.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class ClientError(Exception):
    """Anything the client could not do: an API error status or a network failure."""


class NetworkError(ClientError):
    """No HTTP answer: connection refused or reset, DNS, TLS handshake, timeout."""


class CertificateNotTrusted(NetworkError):
    """TLS verification failed: the server's certificate is not one the client trusts (for
    meshproxy's self-signed one, give its file as the CA: `verify="data/tls/api-cert.pem"`)."""


class UnexpectedBody(ClientError):
    """A success whose body does not have the shape the spec promises."""


class ApiError(ClientError):
    """The server answered with an error status (anything but 2xx)."""

    status: int
    expected_status: ClassVar[int | None] = None  # the status this class stands for

    def __init__(
        self, status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        super().__init__(f"{status}: {self.detail}")

    @property
    def detail(self) -> str:
        """The server's own words, whatever the body shape."""
        return describe_body(self.body) or self.__class__.__doc__ or "error"


class HttpsRequired(ApiError):
    """302: the request went over plain HTTP and the server requires HTTPS."""

    expected_status = 302

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @property
    def detail(self) -> str:
        return f"HTTPS required; use {self.location or 'the https:// URL'}"


class FormError(ApiError):
    """400: the form is invalid; `errors` maps each field ("__all__" for others) to messages."""

    expected_status = 400

    @property
    def errors(self) -> dict[str, list[str]]:
        if not isinstance(self.body, Mapping):
            return {"__all__": [describe_body(self.body)]} if self.body else {}
        return {str(field): _messages(value) for field, value in self.body.items()}


class AuthenticationFailed(ApiError):
    """401: basic authentication failed (or the client IP is banned after repeated failures)."""

    expected_status = 401


class PaymentRequired(ApiError):
    """402: the plan allows no more (sub-accounts, proxies); upgrade or delete some."""

    expected_status = 402


class Forbidden(ApiError):
    """403: sub-account credentials, or a username that is not one of your sub-accounts."""

    expected_status = 403


class NotFound(ApiError):
    """404: no such sub-account (or endpoint)."""

    expected_status = 404


class MethodNotAllowed(ApiError):
    """405: wrong HTTP method for this path; `allowed` lists the right ones."""

    expected_status = 405

    @property
    def allowed(self) -> list[str]:
        return [m.strip() for m in self.headers.get("allow", "").split(",") if m.strip()]


class ServerError(ApiError):
    """500: something went wrong at the API server."""

    expected_status = 500


class PlanUnavailable(ApiError):
    """503: the subscription plan could not be looked up; try again after `retry_after`."""

    expected_status = 503

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (Retry-After as a number), if it said."""
        return parse_retry_after(self.headers.get("retry-after"))


class UnexpectedResponse(ApiError):
    """A status the spec does not define."""


ERROR_CLASSES: dict[int, type[ApiError]] = {
    cls.expected_status: cls
    for cls in (
        HttpsRequired,
        FormError,
        AuthenticationFailed,
        PaymentRequired,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        ServerError,
        PlanUnavailable,
    )
    if cls.expected_status is not None
}


def error_for(status: int, body: Any, headers: Mapping[str, str]) -> ApiError:
    return ERROR_CLASSES.get(status, UnexpectedResponse)(status, body, headers)


def parse_retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form: meshproxy and ProxyMesh send seconds, and an HTTP date
    # would need a clock the client cannot trust to agree with the server's.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def describe_body(body: Any) -> str:
    """A one-line reading of an error body: {"error": ...}, field errors, or text."""
    if body is None or body == "":
        return ""
    if isinstance(body, Mapping):
        for key in ("error", "detail", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
        return "; ".join(_field_line(str(field), value) for field, value in body.items())
    return str(body).strip()


def _messages(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _field_line(field: str, value: Any) -> str:
    text = " ".join(_messages(value))
    return text if field == "__all__" else f"{field}: {text}"
