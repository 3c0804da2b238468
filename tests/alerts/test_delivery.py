"""Usage alerts end to end on PostgreSQL: two API-node instances check and deliver at
once; a sub-account pushed over its monthly limit through the store's usage recording
gives its parent's webhook exactly one signed 80 % and one 100 % call, the first after a
failed attempt (retried with backoff), all attempts recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from meshproxy.config import Settings
from meshproxy.control.alerts import AlertService
from meshproxy.control.webhooks import add_webhook
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.alerts import SIGNATURE_HEADER
from meshproxy.domain.units import GB
from meshproxy.store import Store
from support.polling import wait_until

from .receiver import Receiver

SECRET = "s3cret-of-sixteen-chars"


@pytest.fixture
def settings(make_settings: Any) -> Settings:
    return make_settings(  # type: ignore[no-any-return]
        alerts={
            "allow_networks": ["127.0.0.0/8"],
            "allow_http": True,
            "retry_base": 0.3,
            "retry_max": 0.6,
            "timeout": 5,
        }
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver(fail=1).start()
    yield started
    started.stop()


class Nodes:
    """`count` API-node instances (each its own Store on the same database) running the
    alerts loop in threads, as often as they can, until stopped."""

    def __init__(self, settings: Settings, url: str, count: int) -> None:
        self.stores = [Store.open(url) for _ in range(count)]
        self.services = [AlertService(settings, store) for store in self.stores]
        self.errors: list[BaseException] = []
        self.rounds = [0] * count  # run_once calls each node has finished
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), daemon=True) for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                self.services[index].run_once()
            except BaseException as error:  # reported by the test
                self.errors.append(error)
                return
            self.rounds[index] += 1
            time.sleep(0.02)

    def checked(self, times: int = 2) -> None:
        """Until every node has run its check `times` more times from now (a full one
        begun after this call among them)."""
        now = list(self.rounds)
        wait_until(lambda: all(r >= n + times for r, n in zip(self.rounds, now, strict=True))
                   or bool(self.errors), 10, lambda: (self.rounds, self.errors))

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        for service, store in zip(self.services, self.stores, strict=True):
            service.close()
            store.close()


def test_one_signed_call_per_threshold_from_two_nodes(
    settings: Settings, postgres_url: str, receiver: Receiver
) -> None:
    store = Store.open(postgres_url)
    parent = store.accounts.create("pm_parent", plan="default", billing_day=1)
    sub = store.accounts.create("pm_sub", parent_id=parent.id, monthly_limit_gb=1)
    add_webhook(settings, store, parent, {"url": receiver.url, "secret": SECRET})
    today = datetime.now(UTC).date()
    nodes = Nodes(settings, postgres_url, 2)
    try:
        store.usage.record([UsageDelta(sub.id, parent.id, 79 * GB // 100)], today)
        nodes.checked()
        assert receiver.calls == []  # 79 %: nothing yet
        store.usage.record([UsageDelta(sub.id, parent.id, 6 * GB // 100)], today)  # 85 %
        wait_until(lambda: len(receiver.accepted()) == 1, 15)
        store.usage.record([UsageDelta(sub.id, parent.id, 20 * GB // 100)], today)  # 105 %
        wait_until(lambda: len(receiver.accepted()) == 2, 15)
        time.sleep(1.0)  # both nodes keep checking and claiming: nothing more comes
    finally:
        nodes.stop()
    assert nodes.errors == []

    bodies = []
    for call in receiver.calls:
        expected = "sha256=" + hmac.new(SECRET.encode(), call.body, hashlib.sha256).hexdigest()
        assert call.headers[SIGNATURE_HEADER.lower()] == expected
        assert call.headers["content-type"] == "application/json"
        bodies.append(json.loads(call.body))
    assert [
        (b["threshold"], code)
        for b, code in zip(bodies, [c.answered for c in receiver.calls], strict=True)
    ] == [
        (80, 500),  # the receiver's first answer: a failure, retried
        (80, 204),
        (100, 204),
    ]
    first, hundred = bodies[1], bodies[2]
    assert bodies[0] == first  # the retry sends the same notice
    assert {k: first[k] for k in ("event", "account", "parent", "kind", "limit_gb")} == {
        "event": "usage.threshold",
        "account": "pm_sub",
        "parent": "pm_parent",
        "kind": "monthly",
        "limit_gb": 1,
    }
    assert first["usage_bytes"] == 85 * GB // 100 and hundred["usage_bytes"] == 105 * GB // 100
    assert first["period_start"] == today.replace(day=1).isoformat()
    assert datetime.fromisoformat(first["time"]).tzinfo is not None

    history = store.alerts.history(parent.id)
    assert [(v.notice.account, v.notice.threshold) for v in history] == [
        ("pm_sub", 100),
        ("pm_sub", 80),
    ]
    [eighty] = history[1].deliveries
    assert eighty.state == "delivered" and [a.status for a in eighty.attempts] == [500, 204]
    assert eighty.attempts[0].error == "HTTP 500"
    assert [a.status for a in history[0].deliveries[0].attempts] == [204]
    store.close()
