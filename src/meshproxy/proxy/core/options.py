"""The `X-ProxyMesh-*` request options (ProxyMesh conventions; see design.md)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from meshproxy.domain.addresses import normalise_ip

MAX_TIMEOUT = 600.0
SESSION_ID = re.compile(r"[A-Za-z0-9._~]{1,64}")  # a sticky session's id (design.md)
MAX_SESSION_MINUTES = 1440
DEFAULT_SESSION_MINUTES = 10


class OptionError(ValueError):
    """An option value that cannot be honoured; the message goes into a 400 answer."""


@dataclass(frozen=True, slots=True)
class RequestOptions:
    country: str | None = None  # X-ProxyMesh-Country, upper case
    ip: str | None = None  # X-ProxyMesh-IP / X-ProxyMesh-Prefer-IP, normalised when valid
    not_ips: frozenset[str] = frozenset()  # X-ProxyMesh-Not-IP (addresses or egress names)
    timeout: float | None = None  # X-ProxyMesh-Timeout, seconds
    session: str | None = None  # X-ProxyMesh-Session: a sticky session's id
    session_minutes: int | None = None  # X-ProxyMesh-Session-Time (default 10)
    session_account: int = 0  # whose session it is (set once the request is authenticated)

    @property
    def is_default(self) -> bool:
        return self is _DEFAULT or self == _DEFAULT  # most requests share NO_OPTIONS


_DEFAULT = RequestOptions()
NO_OPTIONS = _DEFAULT


def parse_options(pairs: list[tuple[str, bytes]]) -> RequestOptions:
    """`pairs`: (lower-case name without the `x-proxymesh-` prefix, raw value)."""
    if not pairs:
        return _DEFAULT
    country: str | None = None
    ip: str | None = None
    not_ips: set[str] = set()
    timeout: float | None = None
    session: str | None = None
    minutes: int | None = None
    for name, raw in pairs:
        value = raw.decode("latin-1").strip()
        if name == "country":
            if len(value) != 2 or not value.isascii() or not value.isalpha():
                raise OptionError(f"X-ProxyMesh-Country must be a two-letter code, not {value!r}")
            country = value.upper()
        elif name in ("ip", "prefer-ip"):
            ip = normalise_ip(value) or value
        elif name == "not-ip":
            for item in value.split(","):
                # An address, or an upstream egress's name / a prefix (docs/egress.md).
                excluded = item.strip()
                if excluded:
                    not_ips.add(normalise_ip(excluded) or excluded)
        elif name == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                raise OptionError("X-ProxyMesh-Timeout must be a number of seconds") from None
            if not math.isfinite(timeout) or timeout <= 0:
                raise OptionError("X-ProxyMesh-Timeout must be a positive number of seconds")
            timeout = min(timeout, MAX_TIMEOUT)
        elif name == "session":
            if SESSION_ID.fullmatch(value) is None:
                raise OptionError("X-ProxyMesh-Session must be 1-64 of A-Z a-z 0-9 . _ ~")
            session = value
        elif name == "session-time":
            minutes = session_minutes(value)
            if minutes is None:
                raise OptionError(
                    f"X-ProxyMesh-Session-Time must be whole minutes, 1-{MAX_SESSION_MINUTES}"
                )
    return RequestOptions(country, ip, frozenset(not_ips), timeout, session, minutes)


def session_minutes(value: str) -> int | None:
    """A session time in minutes, or None when not one (1-1440)."""
    if not value.isascii() or not value.isdigit() or len(value) > 4:
        return None
    minutes = int(value)
    return minutes if 1 <= minutes <= MAX_SESSION_MINUTES else None


def overlay(headers: RequestOptions, username: RequestOptions) -> RequestOptions:
    """The username's options with the request's headers winning where they say anything."""
    if headers.is_default:
        return username
    return RequestOptions(
        headers.country or username.country,
        headers.ip or username.ip,
        headers.not_ips | username.not_ips,
        headers.timeout or username.timeout,
        headers.session or username.session,
        headers.session_minutes or username.session_minutes,
    )
