"""What both clients hand to httpx, and how httpx's results become protocol outcomes."""

from __future__ import annotations

import os
import ssl
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import httpx

from meshproxy.client.errors import CertificateNotTrusted, NetworkError
from meshproxy.client.protocol import Reply

# True: the system's CAs; False: no verification (testing only); a path: a CA bundle in PEM,
# e.g. the self-signed certificate meshproxy generates on first run; or a ready SSLContext.
Verify = bool | str | os.PathLike[str] | ssl.SSLContext

DEFAULT_TIMEOUT = 30.0


def _user_agent() -> str:
    try:
        return f"meshproxy-client/{version('meshproxy')}"
    except PackageNotFoundError:
        return "meshproxy-client"


def ssl_verify(verify: Verify) -> bool | ssl.SSLContext:
    if isinstance(verify, bool | ssl.SSLContext):
        return verify
    # httpx 0.28 deprecates a path for `verify`; a context built here works on all versions.
    return ssl.create_default_context(cafile=os.fspath(verify))


def httpx_options(
    base_url: str, username: str, password: str, *, timeout: float, verify: Verify
) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "auth": httpx.BasicAuth(username, password),
        "timeout": timeout,
        "verify": ssl_verify(verify),
        "follow_redirects": False,  # a 302 means "use HTTPS": an error, never followed
        "headers": {"User-Agent": _user_agent(), "Accept": "application/json"},
    }


def reply_of(response: httpx.Response) -> Reply:
    return Reply(response.status_code, dict(response.headers), response.content)


def network_error(error: httpx.TransportError) -> NetworkError:
    kind = CertificateNotTrusted if _certificate_refused(error) else NetworkError
    failure = kind(f"{type(error).__name__}: {error}" if str(error) else repr(error))
    failure.__cause__ = error
    return failure


def _certificate_refused(error: BaseException) -> bool:
    """Whether TLS verification of the server's certificate is what failed (httpx wraps the
    ssl error, sometimes twice)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)
