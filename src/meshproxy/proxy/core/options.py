"""The `X-ProxyMesh-*` request options (ProxyMesh conventions; see design.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from meshproxy.domain.addresses import normalise_ip
from meshproxy.domain.steering import (
    MAX_SESSION_MINUTES,
    SESSION_ID,
    is_country_code,
    session_minutes,
)

MAX_TIMEOUT: Final = 600.0


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


_DEFAULT: Final = RequestOptions()
NO_OPTIONS: Final = _DEFAULT


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
            if not is_country_code(value):
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
