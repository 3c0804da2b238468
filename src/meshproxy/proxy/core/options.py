"""The `X-ProxyMesh-*` request options (ProxyMesh conventions; see design.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from meshproxy.domain.addresses import normalise_ip

MAX_TIMEOUT = 600.0


class OptionError(ValueError):
    """An option value that cannot be honoured; the message goes into a 400 answer."""


@dataclass(frozen=True, slots=True)
class RequestOptions:
    country: str | None = None  # X-ProxyMesh-Country, upper case
    ip: str | None = None  # X-ProxyMesh-IP / X-ProxyMesh-Prefer-IP, normalised when valid
    not_ips: frozenset[str] = frozenset()  # X-ProxyMesh-Not-IP
    timeout: float | None = None  # X-ProxyMesh-Timeout, seconds

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
                normal = normalise_ip(item)
                if normal is not None:
                    not_ips.add(normal)
        elif name == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                raise OptionError("X-ProxyMesh-Timeout must be a number of seconds") from None
            if not math.isfinite(timeout) or timeout <= 0:
                raise OptionError("X-ProxyMesh-Timeout must be a positive number of seconds")
            timeout = min(timeout, MAX_TIMEOUT)
    return RequestOptions(country, ip, frozenset(not_ips), timeout)
