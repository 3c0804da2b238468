"""Where a tunnel or request goes: the destination policy, then the egress choice."""

from __future__ import annotations

from collections.abc import Sequence

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.egress import EgressChoice, EgressPool
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.options import RequestOptions
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.core.target import routed


def route(
    addresses: Sequence[str], policy: DestinationPolicy, pool: EgressPool, options: RequestOptions
) -> tuple[str, EgressChoice] | ProxyError:
    """The first permitted address of the destination that the pool has an egress of its
    family for, and that egress; or why not (403: no address permitted)."""
    permitted = [routed(a) for a in addresses if policy.permits(a)]
    if not permitted:
        return errors.destination_refused(addresses[0])
    for address in permitted:  # not empty, so `choice` is set
        choice = pool.choose(options, 6 if ":" in address else 4)
        if isinstance(choice, EgressChoice) or choice.status != 502:
            break
    if isinstance(choice, ProxyError):
        return choice
    return address, choice
