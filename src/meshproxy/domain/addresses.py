"""IP address text in one canonical form, so one address always compares equal to itself."""

from __future__ import annotations

import ipaddress


def normalise_ip(text: str) -> str | None:
    """Compressed IPv6, IPv4-mapped IPv6 unwrapped to IPv4; None if `text` is no address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)
