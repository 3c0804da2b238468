"""IP address text in one canonical form, so one address always compares equal to itself;
host:port text."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def host_port(host: str, port: int) -> str:
    """`host:port` as text (log lines, errors, a CONNECT's authority): IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalise_ip(text: str) -> str | None:
    """Compressed IPv6, IPv4-mapped IPv6 unwrapped to IPv4; None if `text` is no address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def hostname_address_refused(address: str, allowed: Iterable[Network] = ()) -> str | None:
    """Why an address a hostname resolves to may not authenticate clients as that
    hostname's account (None: it may). Loopback, link-local, private, unspecified and
    other non-public addresses are refused unless inside `allowed` (`[proxy]
    allow_hostname_networks`): `localhost` would otherwise make every client on the proxy
    host, or on its private network, that account."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip.version == network.version and ip in network for network in allowed):
        return None
    for kind, flagged in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("private", ip.is_private),
        ("non-public", not ip.is_global or ip.is_multicast),
    ):
        if flagged:
            return kind
    return None
