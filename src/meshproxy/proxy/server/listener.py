"""A listener (one configured proxy: its name, egress pool and dialer) and the node's
services every connection shares through it (directory, meter, upstream pool, resolver,
executors, access log). Named for the listener: connections reach everything through
`conn.listener` (was services.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from meshproxy.accesslog import AccessLog
from meshproxy.config import ProxyBehaviour
from meshproxy.meter import Meter
from meshproxy.proxy.core.connection import Rules
from meshproxy.proxy.core.directory import AccountDirectory, AccountState
from meshproxy.proxy.core.egress import EgressPool
from meshproxy.proxy.core.machine import Limits
from meshproxy.proxy.core.outcomes import Outcomes
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.server.dial import Dialer
from meshproxy.proxy.server.resolver import Resolver
from meshproxy.proxy.server.upstream import UpstreamPool


class OpenConnection(Protocol):
    """A client connection (connection.ClientConnection) as the node's sweep, drain and
    metrics see it."""

    @property
    def listener(self) -> Listener: ...
    @property
    def account(self) -> AccountState | None: ...

    def check(self, now: float) -> None: ...
    def drain(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(eq=False)
class NodeServices:
    loop: asyncio.AbstractEventLoop
    behaviour: ProxyBehaviour
    directory: AccountDirectory
    meter: Meter
    policy: DestinationPolicy
    upstreams: UpstreamPool
    resolver: Resolver
    # Argon2 checks of credentials not seen before (the node's niced threads; None: the
    # loop's default executor).
    verify_executor: Executor | None = None
    access_log: AccessLog | None = None  # None: off
    connections: set[OpenConnection] = field(default_factory=set)
    outcomes: Outcomes = field(default_factory=Outcomes)  # for the metrics (access.py)

    @cached_property
    def limits(self) -> Limits:
        """The timeout rules' settings (core/machine.py), read once."""
        b = self.behaviour
        return Limits(
            header_timeout=b.header_timeout,
            idle_timeout=b.idle_timeout,
            body_timeout=b.body_timeout,
            body_min_rate=b.body_min_rate,
            upstream_timeout=b.upstream_timeout,
            send_timeout=b.send_timeout,
            tunnel_idle_timeout=b.tunnel_idle_timeout,
        )


@dataclass(eq=False)
class Listener:
    """One configured proxy: its name (for authorization) and egress pool."""

    name: str
    pool: EgressPool
    services: NodeServices
    forwarded: bool = False  # add Via / X-Forwarded-For
    dialer: Dialer = field(init=False)  # connects through the pool's egress (dial.py)

    def __post_init__(self) -> None:
        services = self.services
        self.dialer = Dialer(services.loop, self.pool, services.behaviour.upstream_ca_file)

    @cached_property
    def rules(self) -> Rules:
        """What its connections' machines decide with (core/connection.py), built once."""
        services = self.services
        return Rules(
            listener=self.name,
            directory=services.directory,
            policy=services.policy,
            pool=self.pool,
            cached=services.resolver.cached,
            limits=services.limits,
            now=services.loop.time,
        )
