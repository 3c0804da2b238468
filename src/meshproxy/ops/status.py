"""What a node can say about itself: alive, ready, and which backends answer.

Liveness: the event loop answers. Readiness: a proxy node is ready once its directory is
loaded and its listeners are bound, and stays ready while PostgreSQL or Redis is down (it
decides from memory and keeps the usage; `degraded` says so); an API node is ready while
its store answers (without it every API call is a 503).

Both report parent accounts on plans the configuration no longer declares
(`unconfigured_plans`: plan -> parents; the API answers those parents 503 until the operator
declares the plan again or moves them). It does not make a node unready (every other
account is served), but it is `degraded`. Counted at start; recounted at each probe only
while some are found, so a fixed store clears it without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from meshproxy.meter.health import BackendHealth
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store, StoreUnavailable

if TYPE_CHECKING:  # folding is Redis's: a node without it never imports it
    from meshproxy.meter.fold import FoldingTask


@dataclass
class NodeStatus:
    store: Store
    api: bool
    proxy_node: ProxyNode | None = None
    folding: FoldingTask | None = None
    extra: list[BackendHealth] = field(default_factory=list)
    unconfigured_plans: dict[str, int] = field(default_factory=dict)
    count_unconfigured_plans: Callable[[], dict[str, int]] | None = None

    def backends(self) -> list[BackendHealth]:
        found = list(self.extra)
        node = self.proxy_node
        if node is not None:
            found += [node.meter.health, node.sync_health]
            if node.redis_meter is not None:  # the store, for journals Redis lost
                found.append(node.redis_meter.recovery_health)
            if node.notices is not None:
                found.append(node.notices.health)
        if self.folding is not None:
            found.append(self.folding.health)
        shared = getattr(self.store.notifier, "health", None)  # Redis, when shared
        if isinstance(shared, BackendHealth):
            found.append(shared)
        return found

    async def store_answers(self) -> bool:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), 2.0)
        except (StoreUnavailable, TimeoutError):
            return False
        return True

    async def _unconfigured_plans(self) -> dict[str, int]:
        if self.unconfigured_plans and self.count_unconfigured_plans is not None:
            with contextlib.suppress(StoreUnavailable, TimeoutError):  # the last count stands
                self.unconfigured_plans = await asyncio.wait_for(
                    asyncio.to_thread(self.count_unconfigured_plans), 2.0
                )
        return self.unconfigured_plans

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        backends = {b.name: b.describe() for b in self.backends()}
        degraded = not all(b.up for b in self.backends())
        plans = await self._unconfigured_plans()
        degraded = degraded or bool(plans)
        ready = True
        if self.proxy_node is not None and not self.proxy_node.started:
            ready = False
        if self.api:
            answers = await self.store_answers()
            backends["the store (API)"] = {"up": answers}
            ready = ready and answers
            degraded = degraded or not answers
        report: dict[str, Any] = {"ready": ready, "degraded": degraded, "backends": backends}
        if plans:
            report["unconfigured_plans"] = dict(plans)
        return ready, report

    def liveness(self) -> dict[str, Any]:
        return {
            "alive": True,
            "degraded": not all(b.up for b in self.backends()),
            "backends": {b.name: b.describe() for b in self.backends()},
        }
