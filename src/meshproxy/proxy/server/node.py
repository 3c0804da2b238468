"""A proxy node: every configured proxy listener of this process, and their background work.

node = ProxyNode(settings, store)
await node.start()          # directory loaded, listeners bound, tasks running
node.addresses["open"]      # (host, port) actually bound, e.g. after listen_port 0
await node.stop()           # stop accepting, drain, final usage flush
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from meshproxy.accesslog import open_access_log
from meshproxy.config import (
    EgressAddress,
    ProxyBehaviour,
    ProxyConfig,
    Settings,
    upstream_parts,
)
from meshproxy.domain.bans import BanBook
from meshproxy.domain.passwords import decoy_hash
from meshproxy.fleet import async_client
from meshproxy.meter import LocalMeter, Meter
from meshproxy.meter.counting import CountingMeter
from meshproxy.meter.health import BackendHealth
from meshproxy.proxy.core.directory import AccountDirectory
from meshproxy.proxy.core.egress import Egress, EgressPool, Upstream
from meshproxy.proxy.core.health import EgressHealth, EgressState
from meshproxy.proxy.core.policy import DestinationPolicy
from meshproxy.proxy.core.readthrough import StoreLookups
from meshproxy.proxy.server.connection import ClientConnection
from meshproxy.proxy.server.dial import Dialer
from meshproxy.proxy.server.listener import Listener, NodeServices
from meshproxy.proxy.server.probe import Prober
from meshproxy.proxy.server.resolver import Resolver, resolve_names
from meshproxy.proxy.server.stats import NodeStats, ProxyStats
from meshproxy.proxy.server.sync import DirectorySync
from meshproxy.proxy.server.upstream import UpstreamPool
from meshproxy.proxy.server.verifying import verification_executor
from meshproxy.store import Store

if TYPE_CHECKING:  # Redis's: imported only by a node that has Redis (see there)
    from meshproxy.fleet import notify
    from meshproxy.meter.shared import RedisMeter
    from meshproxy.proxy.server.notices import ChangeNotices

log = logging.getLogger("meshproxy.proxy")

AUTH_REPORT_INTERVAL = 0.1  # seconds between sends of authentication failures to the ban


def egress_pool(proxy: ProxyConfig, behaviour: ProxyBehaviour) -> EgressPool:
    health = EgressHealth(
        behaviour.egress_max_failures,
        behaviour.health_check_interval,
        behaviour.health_check_max_backoff,
    )
    return EgressPool((_egress(e) for e in proxy.egress), geo=proxy.geo, health=health)


def _egress(entry: EgressAddress) -> Egress:
    if entry.upstream is None:
        return Egress(entry.address, entry.country, prefix=entry.prefix)
    url = upstream_parts(entry.upstream)
    upstream = Upstream(url.scheme, url.host, url.port, url.username, url.password)
    return Egress(None, entry.country, upstream=upstream, name=entry.label)


class ProxyNode:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        meter: Meter | None = None,
        reuse_port: bool = False,
        certificate: tuple[Path, Path] | None = None,
    ) -> None:
        self.settings = settings
        # (certificate, key) of the proxies' TLS listeners (tls_port): the API's, given by
        # the command (api/tls.py: the configured files or the generated self-signed one).
        self._certificate = certificate
        self._reuse_port = reuse_port  # several worker processes listen on the same ports
        self.store = store
        policy = settings.ban.policy()
        # One ban book for this process's proxies and its API (store.py): a ban decided by
        # either holds on the other at once, and their failures count in one order.
        bans = store.bans.local
        if bans is None or bans.policy != policy:
            bans = store.bans.local = BanBook(policy, lock=threading.Lock())
        self.directory = AccountDirectory(
            policy,
            max_verifying=settings.proxy.max_verifications_in_flight,
            hostname_networks=settings.proxy.allow_hostname_networks,
            bans=bans,
        )
        # One thread for every store call: sync, flush and ban reports never overlap.
        self._store_executor = ThreadPoolExecutor(1, thread_name_prefix="meshproxy-store")
        # Argon2 checks on threads of lower priority than the event loop (verifying.py).
        self._verify_executor = verification_executor(
            settings.proxy.max_verifications_in_flight
        )
        self._store_lock = asyncio.Lock()
        # With Redis: usage counted in shared counters, changes announced on a channel.
        self._redis = async_client(settings.redis_url) if settings.redis_url else None
        # The meter counting in Redis, when this node made one (its journal's figures).
        self.redis_meter = self._redis_meter() if meter is None else None
        self.meter: Meter = meter or self.redis_meter or self._local_meter()
        self.access_log = open_access_log(settings)  # its writer thread runs from start()
        self._sync = DirectorySync(
            store,
            self.directory,
            self.meter,
            executor=self._store_executor,
            lock=self._store_lock,
            ban_policy=settings.ban.policy(),
        )
        self.directory.read_through = StoreLookups(self._sync.read_through, time.monotonic)
        self.addresses: dict[str, tuple[str, int]] = {}
        self.socks_addresses: dict[str, tuple[str, int]] = {}  # proxies with a socks_port
        self.tls_addresses: dict[str, tuple[str, int]] = {}  # proxies with a tls_port
        self.bytes_by_proxy: dict[str, CountingMeter] = {}  # for metrics
        self.dialers: dict[str, Dialer] = {}  # each proxy's egress pool and its health
        self._servers: list[asyncio.Server] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshing: asyncio.Task[None] | None = None  # the sweep's read of Redis
        self._services: NodeServices | None = None
        self._wake = asyncio.Event()
        self.notices: ChangeNotices | None = None
        if self._redis is not None:
            from meshproxy.fleet import notify  # Redis's: a node without it loads neither
            from meshproxy.proxy.server.notices import ChangeNotices

            channel = notify.channel(settings.shared.prefix)
            self.notices = ChangeNotices(self._redis, channel, self._noted)

    @property
    def sync_health(self) -> BackendHealth:
        """The store as the account sync sees it."""
        return self._sync.health

    def egress_health(self) -> dict[str, dict[str, EgressState]]:
        """Each proxy's upstream egresses by name, and their health (metrics, admin)."""
        return {
            proxy: {
                e.label: dialer.pool.health.track(e)
                for e in dialer.pool.members
                if e.upstream is not None
            }
            for proxy, dialer in self.dialers.items()
        }

    def stats(self, now: float, loop_now: float) -> NodeStats:
        """The node's figures now (`now` epoch seconds, `loop_now` the loop's clock)."""
        directory, meter, redis_meter = self.directory, self.meter, self.redis_meter
        open_by_proxy: dict[str, int] = dict.fromkeys(self.bytes_by_proxy, 0)
        if self.started:
            for connection in list(self.services.connections):
                name = connection.listener.name
                open_by_proxy[name] = open_by_proxy.get(name, 0) + 1
        unflushed = sum(  # a parent's figure includes its sub-accounts'
            n
            for account_id, n in meter.pending_totals().items()
            if (state := directory.by_id.get(account_id)) is not None and state.parent_id is None
        )
        return NodeStats(
            proxies={
                name: ProxyStats(
                    directory.requests.get(name, 0), counted.nbytes, open_by_proxy.get(name, 0)
                )
                for name, counted in self.bytes_by_proxy.items()
            },
            egress=self.egress_health(),
            auth_failures=directory.auth_failures,
            verifications=len(directory.verifications),
            verifications_refused=directory.verifications_refused,
            bans_active=directory.bans.active_count(now),
            accounts_loaded=len(directory.by_username),
            flush_lag=loop_now - meter.last_flush if meter.last_flush else 0.0,
            unflushed_bytes=unflushed,
            unfolded_flushes=None if redis_meter is None else redis_meter.unfolded_flushes,
            access_log_dropped=None if self.access_log is None else self.access_log.dropped,
        )

    @property
    def started(self) -> bool:
        return self._services is not None and bool(self._servers)

    def _redis_meter(self) -> RedisMeter | None:
        """With Redis, the meter of shared counters (imported only then)."""
        if self._redis is None:
            return None
        from meshproxy.meter.keys import UsageKeys
        from meshproxy.meter.shared import RedisMeter

        return RedisMeter(
            self._redis,
            UsageKeys(self.settings.shared.prefix),
            interval=self.settings.proxy.flush_interval,
            lock=self._store_lock,
            store=self.store.folds,
        )

    def _local_meter(self) -> LocalMeter:
        return LocalMeter(
            self.store.usage,
            interval=self.settings.proxy.flush_interval,
            executor=self._store_executor,
            lock=self._store_lock,
        )

    def _noted(self, notes: list[notify.Note]) -> None:
        """A change announced on the channel: adopt a ban now, and poll the feed now."""
        for note in notes:
            if note.kind == "ban" and note.until is not None:
                self.directory.bans.ban(note.subject, note.until)
        self._wake.set()

    @property
    def services(self) -> NodeServices:
        if self._services is None:
            raise RuntimeError("the node is not started")
        return self._services

    def port(self, proxy_name: str) -> int:
        """The port a proxy listener is bound to (useful with listen_port 0 in tests)."""
        return self.addresses[proxy_name][1]

    def listening(self) -> list[tuple[ProxyConfig, tuple[str, int]]]:
        """Each configured proxy with the address its listener is bound to."""
        bound = self.addresses
        return [(p, bound[p.name]) for p in self.settings.proxies if p.name in bound]

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        behaviour = self.settings.proxy
        await self._sync.load_all()
        await self._resolve_hostnames(self.directory.hostnames())
        if self.access_log is not None:
            self.access_log.start(loop)  # lines laid out on this loop, handed over by it
        services = NodeServices(
            loop=loop,
            behaviour=behaviour,
            directory=self.directory,
            meter=self.meter,
            policy=DestinationPolicy(behaviour.allow_destinations),
            upstreams=UpstreamPool(),
            resolver=Resolver(loop),
            verify_executor=self._verify_executor,
            access_log=self.access_log,
        )
        self._services = services
        try:
            for proxy in self.settings.proxies:
                counted = CountingMeter(self.meter)
                self.bytes_by_proxy[proxy.name] = counted
                listener = Listener(
                    proxy.name,
                    egress_pool(proxy, behaviour),
                    dataclasses.replace(services, meter=counted),  # the same connections set
                    behaviour.add_forwarded_headers,
                )
                self.dialers[proxy.name] = listener.dialer
                self.addresses[proxy.name] = await self._serve(
                    ClientConnection, listener, proxy.listen, proxy.bind_port
                )
                if proxy.socks_bind_port is not None:
                    # Imported for a SOCKS5 listener only: a node without one never loads it.
                    from meshproxy.proxy.server.socks import SocksConnection

                    self.socks_addresses[proxy.name] = await self._serve(
                        SocksConnection, listener, proxy.listen, proxy.socks_bind_port
                    )
                if proxy.tls_bind_port is not None:  # the HTTP proxy protocol inside TLS
                    self.tls_addresses[proxy.name] = await self._serve(
                        ClientConnection, listener, proxy.listen, proxy.tls_bind_port,
                        tls=self._tls_context(proxy.name),
                    )
        except BaseException:
            for server in self._servers:
                server.close()
            raise
        await self.meter.start()
        # The decoy hash unknown usernames are checked against costs one argon2 hash (0.1 to
        # 0.3 s) per process: made off the loop once the listeners are bound, so it delays
        # neither readiness nor, as a rule, the first such request (which would wait for it).
        self._tasks.append(loop.create_task(self._make_decoy()))
        self._tasks.append(loop.create_task(self._sync_loop(behaviour.sync_interval)))
        if self.notices is not None:
            self._tasks.append(loop.create_task(self.notices.run()))
        self._every(behaviour.quota_check_interval, self._sweep)
        self._every(AUTH_REPORT_INTERVAL, self._sync.report_auth)
        self._every(behaviour.hostname_refresh, self._refresh_hostnames)
        if any(e.upstream is not None for d in self.dialers.values() for e in d.pool.members):
            prober = Prober(behaviour.health_check_url, behaviour.connect_timeout)
            dialers = list(self.dialers.values())
            self._every(
                min(behaviour.health_check_interval, 1.0),
                functools.partial(prober.probe_due, dialers),
                name="egress health checks",
            )
        log.info("proxy listeners: %s", self.addresses)

    def _every(
        self, seconds: float, work: Callable[[], Awaitable[None]], *, name: str = ""
    ) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await work()
                except Exception:
                    log.exception("background task %s failed", name or work.__name__)

        self._tasks.append(asyncio.get_running_loop().create_task(loop()))

    async def _serve(
        self,
        protocol: Callable[[Listener], asyncio.Protocol],
        listener: Listener,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> tuple[str, int]:
        """Serve `listener` with `protocol` on (host, port); the address bound (port 0:
        the one the system chose)."""
        server = await asyncio.get_running_loop().create_server(
            lambda: protocol(listener),
            host=host,
            port=port,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
            backlog=1024,
            ssl=tls,
            # A TLS handshake is part of the request head's time (the sweep sees a
            # connection only once its handshake is done).
            ssl_handshake_timeout=self.settings.proxy.header_timeout if tls else None,
        )
        self._servers.append(server)
        sockname = server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def _tls_context(self, proxy: str) -> ssl.SSLContext:
        if self._certificate is None:
            raise RuntimeError(f"proxy {proxy!r} has a tls_port but the node has no certificate")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*self._certificate)
        context.set_alpn_protocols(["http/1.1"])  # the proxy protocol is HTTP/1.1
        return context

    async def _sync_loop(self, seconds: float) -> None:
        """Poll the change feed every `seconds`, or at once when a notification arrives."""
        while True:
            # Not wait_for: on Python 3.11 it can swallow a cancellation that arrives as
            # the event is set, and the node's stop would then wait a whole interval.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([waiter], timeout=seconds)
            finally:
                waiter.cancel()
            self._wake.clear()
            try:
                await self._sync_once()
            except Exception:
                log.exception("syncing the account directory failed")

    async def _sync_once(self) -> None:
        await self._sync.report_auth()
        changed = await self._sync.poll()
        if changed:
            names = {
                h
                for n in changed
                if (state := self.directory.by_username.get(n)) is not None
                for h in state.hostnames
            }
            await self._resolve_hostnames(names)

    async def _make_decoy(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, decoy_hash)

    async def _resolve_hostnames(self, names: set[str]) -> None:
        if names:
            resolved = await resolve_names(asyncio.get_running_loop(), names)
            self.directory.set_hostname_addresses(resolved)

    async def _refresh_hostnames(self) -> None:
        await self._resolve_hostnames(self.directory.hostnames())

    async def _sweep(self) -> None:
        services = self.services
        # Every node's bytes for the limited accounts with connections open here, so a
        # download on this node stops when the account's traffic elsewhere crosses a limit.
        watched = {
            i
            for c in services.connections
            if (a := c.account) is not None and a.limited
            for i in (a.id, a.parent_id)
            if i is not None
        }
        refreshing = self._refreshing
        if watched and (refreshing is None or refreshing.done()):
            refreshing = self._refreshing = services.loop.create_task(
                self._refresh_shared(watched)
            )
        if refreshing is not None and not refreshing.done():
            # Bounded: `Exchange.watch` counts on the next sweep's checks within an interval,
            # and a hung Redis would hold them (and a 504 timer) for seconds. A read not back
            # by then is left to finish (a later sweep applies it), never started twice.
            await asyncio.wait([refreshing], timeout=services.behaviour.quota_check_interval / 2)
        self._sync.apply_shared()
        now = services.loop.time()
        for connection in list(services.connections):
            connection.check(now)
        services.upstreams.sweep()
        self.directory.prune(time.time())

    async def _refresh_shared(self, account_ids: set[int]) -> None:
        try:
            await self._sync.shared.refresh_shared(account_ids)
        except Exception:
            log.exception("reading the shared usage counters failed")

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop accepting, let open exchanges finish (up to `drain_timeout`), flush usage."""
        for server in self._servers:
            server.close()
        services = self._services
        if services is not None:
            for connection in list(services.connections):
                connection.drain()
            for _ in range(max(1, int(drain_timeout / 0.05))):
                if not services.connections:
                    break
                await asyncio.sleep(0.05)
            for connection in list(services.connections):
                connection.abort()
            services.upstreams.close_all()
        for dialer in self.dialers.values():
            dialer.close()  # the relays of https:// upstreams' tunnels
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        self._servers.clear()
        await self.meter.stop()
        if self.access_log is not None:  # the lines of the connections ended above
            self.access_log.close()
            await asyncio.get_running_loop().run_in_executor(None, self.access_log.join)
        with contextlib.suppress(Exception):
            await self._sync.report_auth()  # last ban reports
        if self._redis is not None:
            await self._redis.aclose()
        if self.store.bans.local is self.directory.bans:
            self.store.bans.local = None  # no longer kept current by this node's feed
        self._store_executor.shutdown(wait=True)
        # Queued checks are dropped (their connections are gone); a running one ends alone.
        self._verify_executor.shutdown(wait=False, cancel_futures=True)
