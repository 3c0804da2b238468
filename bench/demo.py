"""Demo data for the dashboard's screenshots and benchmark: a reseller parent with
sub-accounts, two billing periods of daily usage, IPs and hostnames. Deterministic."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from meshproxy.config import Settings, load_settings
from meshproxy.control.operator import create_parent
from meshproxy.domain.accounts import AccountRecord, UsageDelta
from meshproxy.domain.passwords import hash_password
from meshproxy.domain.units import GB
from meshproxy.store import Store

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
PARENT = "acme"
PARENT_PASSWORD = "demo-password"
SUB_PASSWORD = "sub-password"
NAMES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
]  # fmt: skip


def _pool(prefix: str, countries: list[str]) -> list[dict[str, str]]:
    return [
        {"address": f"{prefix}.{index}", "country": country}
        for index, country in enumerate(countries, start=2)
    ]


def demo_settings(data_dir: Path, **overrides: Any) -> Settings:
    """An installation as a provider would configure it (plain HTTP: served on loopback)."""
    base: dict[str, Any] = {
        "data_dir": str(data_dir),
        "proxy_domain": "meshproxy.example",
        "api": {"public_url": "https://api.meshproxy.example", "tls": False,
                "require_https": False},
        "plans": [{"name": "reseller", "max_sub_accounts": 10_000, "max_proxies": 4,
                   "default_proxies": ["open", "world"]}],
        "default_plan": "reseller",
        "proxies": [
            {"name": "open", "port": 31280, "geo": True,
             "egress": _pool("127.0.0", ["US", "US", "DE", "FR", "GB"])},
            {"name": "world", "port": 31281, "geo": True,
             "egress": _pool("127.0.1", ["JP", "SG", "BR"])},
            {"name": "us-east", "port": 31282},
            {"name": "eu-west", "port": 31283},
        ],
    }  # fmt: skip
    base.update(overrides)
    return load_settings(None, **base)


def seed_parent(settings: Settings, store: Store) -> AccountRecord:
    return create_parent(
        settings, store, PARENT, password=PARENT_PASSWORD, billing_day=10,
        email="billing@acme.example", now=NOW - timedelta(days=90),
    ).account  # fmt: skip


def seed_sub_accounts(
    store: Store, parent: AccountRecord, count: int, *, passwords: bool = True
) -> list[AccountRecord]:
    """`count` sub-accounts pm_<name>[<n>], some with limits, a few deactivated."""
    rng = random.Random(5)
    secret = hash_password(SUB_PASSWORD) if passwords else None
    subs = []
    for index in range(count):
        name = NAMES[index % len(NAMES)] + ("" if index < len(NAMES) else str(index))
        subs.append(
            store.accounts.create(
                f"pm_{name}",
                parent_id=parent.id,
                password_hash=secret,
                first_name=name.capitalize(),
                email=f"{name}@customer.example",
                monthly_limit_gb=rng.choice([0, 0, 5, 20, 50]),
                total_limit_gb=rng.choice([0, 0, 0, 200]),
                active=index % 7 != 6,
                now=NOW - timedelta(days=80 - index % 70, hours=index % 24),
            )
        )
    return subs


def seed_usage(store: Store, parent: AccountRecord, subs: list[AccountRecord], days: int) -> None:
    """Daily usage for the last `days` days: a few heavy users, many light ones."""
    rng = random.Random(11)
    weights = [rng.paretovariate(1.2) for _ in subs]
    today = NOW.date()
    for offset in range(days, -1, -1):
        day: date = today - timedelta(days=offset)
        weekday = 0.6 if day.weekday() >= 5 else 1.0
        deltas = [
            UsageDelta(sub.id, parent.id, int(weight * weekday * rng.uniform(0.3, 1.0) * GB / 8))
            for sub, weight in zip(subs, weights, strict=True)
            if rng.random() < 0.85
        ]
        deltas.append(UsageDelta(parent.id, None, int(rng.uniform(0.05, 0.3) * GB)))
        store.usage.record(deltas, day)


def seed_demo(settings: Settings, store: Store) -> AccountRecord:
    parent = seed_parent(settings, store)
    subs = seed_sub_accounts(store, parent, len(NAMES))
    seed_usage(store, parent, subs, days=40)
    store.access.add_ip(parent, "203.0.113.10")
    store.access.add_hostname(parent, "office.acme.example")
    store.access.add_ip(subs[0], "198.51.100.23")
    store.access.add_ip(subs[0], "2001:db8::17")
    store.access.add_hostname(subs[0], "scraper.alice.example")
    return parent
