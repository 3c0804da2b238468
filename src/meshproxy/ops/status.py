"""What a node can say about itself: alive, ready, and which backends answer.

Liveness: the event loop answers. Readiness: a proxy node is ready once its directory is
loaded and its listeners are bound, and stays ready while PostgreSQL or Redis is down (it
decides from memory and keeps the usage; `degraded` says so); an API node is ready while
its store answers (without it every API call is a 503).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from meshproxy.meter.fold import FoldingTask
from meshproxy.meter.health import BackendHealth
from meshproxy.meter.shared import RedisMeter
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store, StoreUnavailable


@dataclass
class NodeStatus:
    store: Store
    api: bool
    proxy_node: ProxyNode | None = None
    folding: FoldingTask | None = None
    extra: list[BackendHealth] = field(default_factory=list)

    def backends(self) -> list[BackendHealth]:
        found = list(self.extra)
        node = self.proxy_node
        if node is not None:
            found += [node.meter.health, node.sync_health]
            if isinstance(node.meter, RedisMeter):  # the store, for journals Redis lost
                found.append(node.meter.recovery_health)
            if node.notices is not None:
                found.append(node.notices.health)
        if self.folding is not None:
            found.append(self.folding.health)
        shared = getattr(self.store, "redis_health", None)
        if isinstance(shared, BackendHealth):
            found.append(shared)
        return found

    async def store_answers(self) -> bool:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), 2.0)
        except (StoreUnavailable, TimeoutError):
            return False
        return True

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        backends = {b.name: b.describe() for b in self.backends()}
        degraded = not all(b.up for b in self.backends())
        ready = True
        if self.proxy_node is not None and not self.proxy_node.started:
            ready = False
        if self.api:
            answers = await self.store_answers()
            backends["the store (API)"] = {"up": answers}
            ready = ready and answers
            degraded = degraded or not answers
        return ready, {"ready": ready, "degraded": degraded, "backends": backends}

    def liveness(self) -> dict[str, Any]:
        return {
            "alive": True,
            "degraded": not all(b.up for b in self.backends()),
            "backends": {b.name: b.describe() for b in self.backends()},
        }
