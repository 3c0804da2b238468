"""The answers the proxy makes itself: status, `X-ProxyMesh-Error`, RFC 9209 `Proxy-Status`.

Every refusal says why three ways: a short reason in `X-ProxyMesh-Error`, the RFC 9209
error type (with the same reason as `details`) in `Proxy-Status`, and a one-line
plain-text body. Pure: `render` returns the bytes to write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PROXY_NAME: Final = "meshproxy"

_STATUS_TEXT: Final = {
    400: "Bad Request",
    402: "Payment Required",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    509: "Bandwidth Limit Exceeded",
}


@dataclass(frozen=True, slots=True)
class ProxyError:
    status: int
    reason: str  # short, human: "account deactivated"
    proxy_status: str  # RFC 9209 error type: "http_request_denied"
    close: bool = False  # the connection cannot be kept after this answer
    challenge: bool = False  # add Proxy-Authenticate
    retry_after: int | None = None  # seconds, sent as Retry-After


def _printable(text: str) -> str:
    """Header-safe: printable ASCII only (reasons can quote client input)."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:200]


def render(
    error: ProxyError,
    *,
    realm: str,
    close: bool,
    extra_headers: bytes = b"",
) -> bytes:
    """The whole response: head and one-line body. `extra_headers`: ready CRLF-ended lines."""
    reason = _printable(error.reason)
    details = reason.replace("\\", "\\\\").replace('"', '\\"')
    body = f"{error.status} {_STATUS_TEXT.get(error.status, 'Error')}: {reason}\n"
    lines = [
        f"HTTP/1.1 {error.status} {_STATUS_TEXT.get(error.status, 'Error')}",
        f"X-ProxyMesh-Error: {reason}",
        f'Proxy-Status: {PROXY_NAME}; error={error.proxy_status}; details="{details}"',
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
    ]
    if error.challenge:
        lines.append(f'Proxy-Authenticate: Basic realm="{_printable(realm)}"')
    if error.retry_after is not None:
        lines.append(f"Retry-After: {error.retry_after}")
    if close or error.close:
        lines.append("Connection: close")
    head = "\r\n".join(lines).encode("ascii") + b"\r\n" + extra_headers + b"\r\n"
    return head + body.encode("ascii")


# ---- the refusals, one constructor each --------------------------------------------------


def auth_required(why: str = "proxy authentication required") -> ProxyError:
    return ProxyError(407, why, "http_request_denied", challenge=True)


def banned() -> ProxyError:
    return ProxyError(
        407, "client IP banned after repeated authentication failures", "http_request_denied",
        challenge=True,
    )


def deactivated() -> ProxyError:
    return ProxyError(402, "account deactivated", "http_request_denied")


def not_authorized_on_proxy(proxy: str) -> ProxyError:
    return ProxyError(
        402, f"account error or not authorized on this proxy ({proxy})", "http_request_denied"
    )


def over_quota(reason: str) -> ProxyError:
    return ProxyError(509, reason, "http_request_denied")


def destination_refused(address: str) -> ProxyError:
    why = f"destination {address} not allowed (setting: [proxy] allow_destinations)"
    return ProxyError(403, why, "destination_ip_prohibited")


def bad_request(why: str) -> ProxyError:
    return ProxyError(400, why, "http_request_error", close=True)


def bad_option(why: str) -> ProxyError:
    """A well-formed request with an unusable X-ProxyMesh-* option: the connection stays."""
    return ProxyError(400, why, "http_request_error")


def head_too_large() -> ProxyError:
    return ProxyError(431, "request header block too large", "http_request_error", close=True)


def not_implemented(why: str) -> ProxyError:
    return ProxyError(501, why, "http_request_error", close=True)


def version_not_supported() -> ProxyError:
    return ProxyError(505, "only HTTP/1.0 and HTTP/1.1 are served", "http_request_error",
                      close=True)


def request_timeout() -> ProxyError:
    return ProxyError(408, "request not received in time", "http_request_error", close=True)


def dns_failed(host: str) -> ProxyError:
    return ProxyError(502, f"cannot resolve {host}", "dns_error")


def no_egress(why: str) -> ProxyError:
    return ProxyError(502, why, "destination_ip_unroutable")


def connect_failed(why: str) -> ProxyError:
    return ProxyError(502, why, "connection_refused")


def connect_timeout() -> ProxyError:
    return ProxyError(504, "upstream connect timed out", "connection_timeout")


def response_timeout() -> ProxyError:
    return ProxyError(504, "upstream response timed out", "http_response_timeout", close=True)


def upstream_closed() -> ProxyError:
    return ProxyError(502, "upstream closed the connection", "connection_terminated", close=True)


def bad_response(why: str) -> ProxyError:
    return ProxyError(502, why, "http_protocol_error", close=True)


def unavailable(why: str) -> ProxyError:
    return ProxyError(503, why, "proxy_internal_error", close=True)


def verifications_busy() -> ProxyError:
    """Credentials not checked (too many checks under way): no challenge, nothing said about
    them, and the connection stays for the retry."""
    return ProxyError(
        503, "too many new credentials being verified; retry shortly", "proxy_internal_error",
        retry_after=1,
    )
