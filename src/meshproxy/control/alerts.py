"""Usage alerts, the moving part: every `[alerts] interval` an API node compares usage
with the limits (the store inserts each notice once, whichever node sees it first) and
delivers the notices due: claimed under a lease, so one node sends each; POSTed with httpx,
signed (HMAC-SHA256 of the body), retried with backoff until `retry_for` has passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from meshproxy.config import Settings
from meshproxy.control.webhooks import check_destination
from meshproxy.domain.alerts import SIGNATURE_HEADER, Backoff, Notice, pinned, signature
from meshproxy.store import Store
from meshproxy.store.alerts import DeliveryJob

log = logging.getLogger("meshproxy.alerts")

Clock = Callable[[], datetime]
CLAIM = 20  # deliveries one node claims at a time


class AlertService:
    """One node's checker and sender (synchronous: the store and httpx block; run it in a
    thread). Any number of nodes may run one against the same store."""

    def __init__(
        self, settings: Settings, store: Store, *, clock: Clock = lambda: datetime.now(UTC)
    ) -> None:
        config = settings.alerts
        self._settings = settings
        self._store = store
        self._clock = clock
        self._backoff = Backoff(config.retry_base, config.retry_max, config.retry_for)
        # A lease outlasts an attempt (connect, write and read each bounded by the timeout).
        self._lease = 4 * config.timeout + 30
        # Never an environment's HTTP(S)_PROXY: a notice goes straight to its receiver.
        verify = (
            True if config.ca_file is None else ssl.create_default_context(cafile=config.ca_file)
        )
        self._client = httpx.Client(timeout=config.timeout, trust_env=False, verify=verify)

    def close(self) -> None:
        self._client.close()

    def check(self) -> list[Notice]:
        """Notices of the thresholds reached since the last check (by any node)."""
        return self._store.alerts.record_notices(self._clock())

    def deliver_due(self) -> int:
        """Send the deliveries due that no other node holds; how many were attempted."""
        jobs = self._store.alerts.claim_deliveries(self._clock(), self._lease, CLAIM)
        for job in jobs:
            self._attempt(job)
        return len(jobs)

    def run_once(self) -> None:
        self.check()
        while self.deliver_due() == CLAIM:
            pass

    def _attempt(self, job: DeliveryJob) -> None:
        body = job.body.encode()
        status: int | None = None
        destination = check_destination(self._settings, job.url)
        error = destination.refused
        started = time.perf_counter()
        if error is None:
            target = pinned(job.url, destination.address)
            try:
                response = self._client.post(
                    target.url,
                    content=body,
                    headers={
                        "Host": target.host,
                        "Content-Type": "application/json",
                        "User-Agent": "meshproxy-alerts",
                        "X-Meshproxy-Delivery": str(job.id),
                        SIGNATURE_HEADER: signature(job.secret, body),
                    },
                    extensions={} if target.sni is None else {"sni_hostname": target.sni},
                )
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
        duration_ms = round((time.perf_counter() - started) * 1000)
        now = self._clock()
        delivered = error is None
        retry_at = (
            None if delivered else self._backoff.next_attempt(job.attempts + 1, job.created_at, now)
        )
        if not delivered:
            log.warning(
                "usage notice to %s not delivered (attempt %d): %s%s",
                job.url,
                job.attempts + 1,
                error,
                "" if retry_at is not None else "; giving up",
            )
        self._store.alerts.finish_attempt(
            job,
            now,
            status=status,
            error=error,
            duration_ms=duration_ms,
            retry_at=retry_at,
            delivered=delivered,
        )


class AlertsTask:
    """An API node's alerts: `AlertService.run_once` every `[alerts] interval` in a thread."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._service = AlertService(settings, store)
        self._interval = settings.alerts.interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._service.run_once)
            except Exception as error:  # the store down: the next round tries again
                log.warning("usage alerts: %s", error)
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._service.close()
