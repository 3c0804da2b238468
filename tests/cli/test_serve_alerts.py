"""A running node delivers usage alerts: `meshproxy serve` (its API role's first worker)
checks usage and calls a parent's webhook when a sub-account passes 80 % of its limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from alerts.receiver import Receiver
from meshproxy.config import load_settings
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.units import GB
from meshproxy.store import Store
from support.polling import eventually

from .test_serve import env, start, stop  # noqa: F401  (env: the fixture)


def test_serve_delivers_a_notice(tmp_path: Path, env: dict[str, str]) -> None:  # noqa: F811
    receiver = Receiver().start()
    alerting = {
        **env,
        "MESHPROXY_FIRST_PARENT": "false",
        "MESHPROXY_ALERTS__INTERVAL": "0.2",
        "MESHPROXY_ALERTS__ALLOW_HTTP": "true",
        "MESHPROXY_ALERTS__ALLOW_NETWORKS": '["127.0.0.0/8"]',
    }
    store = Store.open(load_settings(None, data_dir=str(tmp_path / "data")).database_url)
    try:
        parent = store.accounts.create("pm_parent", plan="default", billing_day=1)
        sub = store.accounts.create("pm_sub", parent_id=parent.id, monthly_limit_gb=1)
        now = datetime.now(UTC)
        store.alerts.add_webhook(parent.id, receiver.url, "s3cret-of-sixteen-chars", now,
                                 max_webhooks=1)
        process, banner = start(tmp_path, alerting)
        try:
            assert "Stop with Ctrl-C" in banner, banner
            store.usage.record([UsageDelta(sub.id, parent.id, 9 * GB // 10)], now.date())
            eventually(receiver.accepted, 15, 0.05)  # the call is asserted below
        finally:
            assert stop(process) == 0
        [call] = receiver.accepted()
        body = json.loads(call.body)
        assert (body["account"], body["threshold"], body["kind"]) == ("pm_sub", 80, "monthly")
    finally:
        store.close()
        receiver.stop()
