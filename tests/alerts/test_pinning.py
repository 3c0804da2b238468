"""A delivery connects to the address its URL's host was checked to have, never to
whatever the name resolves to a moment later; the receiver still sees its own Host."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from meshproxy.api.tls import generate_self_signed
from meshproxy.config import Settings
from meshproxy.control import webhooks
from meshproxy.control.alerts import AlertService
from meshproxy.domain.accounts import UsageDelta
from meshproxy.domain.alerts import pinned
from meshproxy.domain.units import GB
from meshproxy.store import Store

from .receiver import Receiver


def deliver_80_percent(store: Store, settings: Settings, url: str, receiver: Receiver) -> int:
    """A webhook at `url` on an account at 80% of its limit, one check of the alert
    service, the receiver stopped: the account's id."""
    parent = store.accounts.create("p", plan="default", billing_day=1, monthly_limit_gb=1)
    now = datetime.now(UTC)
    store.alerts.add_webhook(parent.id, url, "s3cret-of-sixteen-chars", now, max_webhooks=1)
    store.usage.record([UsageDelta(parent.id, None, 8 * GB // 10)], now.date())
    service = AlertService(settings, store)
    try:
        service.run_once()
    finally:
        service.close()
        receiver.stop()
    return parent.id


def test_the_checked_address_is_the_one_called(
    store: Store, make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings: Settings = make_settings(
        alerts={"allow_networks": ["127.0.0.0/8"], "allow_http": True}
    )
    receiver = Receiver().start()
    port = receiver.url.split(":")[2].split("/")[0]
    # A name no resolver knows: only the address checked can reach the receiver.
    monkeypatch.setattr(webhooks, "resolve", lambda host: ("127.0.0.1",))
    deliver_80_percent(store, settings, f"http://hook.pinned.invalid:{port}/in?x=1", receiver)
    [call] = receiver.calls
    assert call.answered == 204 and call.path == "/in?x=1"
    assert call.headers["host"] == f"hook.pinned.invalid:{port}"
    assert json.loads(call.body)["threshold"] == 80


def test_pinned_requests() -> None:
    https = pinned("https://hooks.example.com/a?b=1", "203.0.113.5")
    assert (https.url, https.host, https.sni) == (
        "https://203.0.113.5/a?b=1",
        "hooks.example.com",
        "hooks.example.com",
    )
    six = pinned("https://[2001:db8::1]:8443", "2001:db8::1")
    assert (six.url, six.host, six.sni) == (
        "https://[2001:db8::1]:8443/",
        "[2001:db8::1]:8443",
        None,
    )
    plain = pinned("http://hooks.example.com:81/", "203.0.113.5")
    assert (plain.url, plain.sni) == ("http://203.0.113.5:81/", None)


@pytest.mark.parametrize("certified", ["hook.pinned.invalid", "someone-else.invalid"])
def test_https_is_verified_against_the_urls_name(
    store: Store,
    make_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    certified: str,
) -> None:
    """Connected to the address checked, TLS still names (SNI) and verifies the URL's host:
    a certificate for another name fails the attempt."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    generate_self_signed(cert, key, [certified])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    receiver = Receiver(tls=context, name="hook.pinned.invalid").start()
    settings: Settings = make_settings(
        alerts={"allow_networks": ["127.0.0.0/8"], "ca_file": str(cert), "retry_base": 60}
    )
    monkeypatch.setattr(webhooks, "resolve", lambda host: ("127.0.0.1",))
    parent_id = deliver_80_percent(store, settings, receiver.url, receiver)
    assert server_names == ["hook.pinned.invalid"]
    [view] = store.alerts.history(parent_id)
    [attempt] = view.deliveries[0].attempts
    if certified == "hook.pinned.invalid":
        assert attempt.status == 204 and len(receiver.calls) == 1
    else:
        assert attempt.status is None and "CERTIFICATE_VERIFY_FAILED" in (attempt.error or "")
        assert receiver.calls == []
