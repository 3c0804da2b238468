"""Keeps a node's account directory current: one full load, then the store's change feed.

Polled every `proxy.sync_interval` (0.25 s) from a thread, so an API change reaches the
node within a second; only the changed usernames are reloaded (with Redis, a notification
wakes the poll at once: see notices.py). Store calls run in the node's single store
thread, never on the event loop. A reload holds the meter's lock so it never overlaps a
usage flush (the reload adds the unflushed bytes; see directory.py), and reads the shared
counters after the store, so they include everything the store had folded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import Any, TypeVar

from meshproxy.domain.accounts import AccountView
from meshproxy.domain.bans import BanPolicy
from meshproxy.meter import Meter, shared_counters
from meshproxy.meter.health import BackendHealth
from meshproxy.proxy.core.directory import AccountDirectory, AuthReport
from meshproxy.store import Store, StoreUnavailable

T = TypeVar("T")

# Change ids can commit out of order under concurrent writers (PostgreSQL sequences):
# re-read this many ids behind the newest seen, skipping the ones already applied.
LOOKBACK = 256


class DirectorySync:
    def __init__(
        self,
        store: Store,
        directory: AccountDirectory,
        meter: Meter,
        *,
        executor: Executor,
        lock: asyncio.Lock,
        ban_policy: BanPolicy,
    ) -> None:
        self._store = store
        self._directory = directory
        self._meter = meter
        self.shared = shared_counters(meter)  # the Redis meter's; else none to read
        self._executor = executor
        self._lock = lock
        self._ban_policy = ban_policy
        self._last_id = 0
        self._loaded_generation: str | None = None  # of the shared counters at the last load
        self._applied: set[int] = set()
        self.health = BackendHealth("the store (account changes)")

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def load_all(self) -> None:
        last_id = await self._run(self._store.changes.latest_id)
        now = datetime.now(UTC)
        async with self._lock:
            generation = await self.shared.current_generation()
            views = await self._run(self._store.accounts.views, now, None, generation)
            await self.shared.refresh_shared([v.account.id for v in views])
            self._directory.load(
                views, now, self._meter.pending_totals(), self.shared.shared_totals()
            )
            self._loaded_generation = generation
        for ip, until in (await self._run(self._store.bans.active, time.time())).items():
            self._directory.bans.ban(ip, until)
        self._last_id = max(self._last_id, last_id)

    def read_through(self, username: str) -> AccountView | None:
        """The store's view of one account now, for a credential the directory does not
        know yet (proxy/core/readthrough.py). Synchronous: called from a verification
        thread, never the loop. An outage raises (the lookup is then not remembered)."""
        views = self._store.accounts.views(datetime.now(UTC), [username], self._loaded_generation)
        return next((v for v in views if v.account.username == username), None)

    def apply_shared(self) -> None:
        """Live usage from the shared counters the meter learnt of since the last call."""
        changed = self.shared.take_changed()
        if changed:
            self._directory.apply_shared(changed, self._meter.pending_totals())

    async def poll(self) -> set[str]:
        """Apply new changes; returns the usernames reloaded. A store outage is logged
        (loudly, once) and the node goes on deciding from memory."""
        try:
            changed = await self._poll()
        except StoreUnavailable as error:
            self.health.failed(error, "polling account changes")
            return set()
        self.health.ok()
        return changed

    async def _poll(self) -> set[str]:
        # A billing period ended, or the shared counters started a new generation (Redis
        # lost data): every account's usage is read again.
        if (
            time.time() >= self._directory.next_reset
            or self.shared.generation != self._loaded_generation
        ):
            await self.load_all()
            return set(self._directory.by_username)
        changes = await self._run(self._store.changes.since, max(0, self._last_id - LOOKBACK))
        fresh = [c for c in changes if c.id not in self._applied]
        if not fresh:
            return set()
        usernames = {c.subject for c in fresh if c.kind == "account"}
        ips = {c.subject for c in fresh if c.kind == "ban"}
        if usernames:
            now = datetime.now(UTC)
            async with self._lock:
                views = await self._run(
                    self._store.accounts.views, now, usernames, self._loaded_generation
                )
                await self.shared.refresh_shared([v.account.id for v in views])
                self._directory.update(
                    usernames, views, now, self._meter.pending_totals(), self.shared.shared_totals()
                )
        if ips:
            active = await self._run(self._store.bans.active, time.time())
            self._directory.apply_bans(ips, active)
        self._last_id = max(self._last_id, max(c.id for c in fresh))
        self._applied.update(c.id for c in fresh)
        horizon = self._last_id - LOOKBACK
        self._applied = {i for i in self._applied if i > horizon}
        return usernames

    async def report_auth(self) -> None:
        """Send local authentication outcomes to the shared ban count (run often: a ban
        must reach the other nodes within a second, whatever the poll interval)."""
        if not self._directory.auth_reports:
            return
        try:
            await self._report_auth()
        except StoreUnavailable as error:
            self.health.failed(error, "reporting authentication failures")

    async def _report_auth(self) -> None:
        reports = self._directory.auth_reports
        while reports:
            report = reports.popleft()
            try:
                until = await self._run(self._send_report, report)
            except BaseException:
                reports.appendleft(report)  # reported once the store is back
                raise
            if until is not None:
                self._directory.bans.ban(report.ip, until)

    def _send_report(self, report: AuthReport) -> float | None:
        """One outcome into the store, stamped with when it happened (the store counts
        failures in that order); a ban this node decided is written as it is."""
        store = self._store
        if report.kind == "failure":
            return store.bans.record_failure(report.ip, report.at, self._ban_policy)
        if report.kind == "success":
            store.bans.record_success(report.ip, report.at)
        else:
            until = report.at + self._ban_policy.ban_seconds
            store.bans.record(report.ip, until, decided_at=report.at)
        return None
