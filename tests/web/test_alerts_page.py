"""The dashboard's usage alerts: a parent adds and deletes webhooks through the API's
operations (the same refusals), and sees its accounts' notices with every delivery
attempt; sub-accounts get 403."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from meshproxy.config import Settings
from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store

from .helpers import NOW, PARENT_PASSWORD, SUB_PASSWORD, Browser, Clock, make_app, make_sub

SECRET = "a-webhook-secret-of-some-length"


@pytest.fixture
def allowing(make_settings: Any, settings: Settings) -> Settings:
    return make_settings(  # type: ignore[no-any-return]
        plans=[p.model_dump() for p in settings.plans],
        proxies=[p.model_dump(exclude_none=True) for p in settings.proxies],
        alerts={"allow_networks": ["127.0.0.0/8"], "allow_http": True},
    )


def test_webhooks_notices_and_attempts(
    allowing: Settings, store: Store, parent: AccountRecord, clock: Clock
) -> None:
    sub = make_sub(store, parent, "pm_sub", monthly_limit_gb=1)
    with TestClient(make_app(allowing, store, clock), follow_redirects=False) as client:
        browser = Browser(client)
        browser.login("pm_parent", PARENT_PASSWORD)
        assert browser.get("/dashboard/alerts/").status_code == 200
        refused = browser.post(
            "/dashboard/alerts/add/", {"url": "http://10.0.0.1/hook", "secret": SECRET}
        )
        assert refused.status_code == 400 and "a private address" in refused.text
        added = browser.post(
            "/dashboard/alerts/add/", {"url": "http://127.0.0.1:9/hook", "secret": SECRET}
        )
        assert added.status_code == 303
        [webhook] = store.alerts.list_webhooks(parent.id)
        page = browser.get("/dashboard/alerts/").text
        assert "http://127.0.0.1:9/hook" in page and SECRET not in page

        store.usage.record([UsageDelta(sub.id, parent.id, 9 * GB // 10)], NOW.date())
        [notice] = store.alerts.record_notices(NOW)
        [job] = store.alerts.claim_deliveries(NOW, 60)
        store.alerts.finish_attempt(
            job, NOW, status=503, error="HTTP 503", duration_ms=12, retry_at=NOW, delivered=False
        )
        page = browser.get("/dashboard/alerts/").text
        assert "pm_sub" in page and "80 %" in page and "monthly" in page
        assert "HTTP 503 (12 ms)" in page and "<strong>pending</strong>" in page

        gone = browser.post("/dashboard/alerts/delete/", {"id": str(webhook.id)})
        assert gone.status_code == 303 and store.alerts.list_webhooks(parent.id) == []
        again = browser.post("/dashboard/alerts/delete/", {"id": str(webhook.id)})
        assert again.status_code == 404 and "Webhook not found." in again.text
        assert notice.threshold == 80

        browser.post("/dashboard/logout/")
        browser.login("pm_sub", SUB_PASSWORD)
        assert browser.get("/dashboard/alerts/").status_code == 403
