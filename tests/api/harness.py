"""Test harness: a real API server (uvicorn, TLS, real sockets) on a real SQLite file.

Servers run on one background event loop thread. Clients are httpx over real TLS,
verifying the server's generated certificate; each can bind its own loopback source
address, so ban tests do not ban the rest of the suite.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from meshproxy.api.server import ApiPorts
from meshproxy.config import Settings, load_settings
from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store

PASSWORD = "correct horse battery staple"
START = 1_760_000_000.0  # 2025-10-09, a fixed "now" for the injectable clock

BASE_SETTINGS: dict[str, Any] = {
    "proxy_domain": "proxymesh.test",
    "api": {"listen": "127.0.0.1", "https_port": 0, "http_port": 0},
    "plans": [
        {
            "name": "default",
            "max_sub_accounts": 100,
            "max_proxies": 10,
            "default_proxies": ["open", "world"],
        },
        {"name": "tiny", "max_sub_accounts": 2, "max_proxies": 2, "default_proxies": ["open"]},
    ],
    "proxies": [
        {
            "name": "open",
            "port": 31280,
            "geo": True,
            "egress": [
                {"address": "127.0.0.1", "country": "US"},
                {"address": "127.0.0.2", "country": "us"},
                {"address": "127.0.0.3", "country": "DE"},
                {"address": "127.0.0.4"},
            ],
        },
        {
            "name": "world",
            "port": 31281,
            "geo": True,
            "egress": [
                {"address": "127.0.1.1", "country": "GB"},
            ],
        },
        {"name": "plain", "port": 31282},
        {"name": "extra", "domain": "extra.example.net", "port": 31283},
    ],
}


@dataclass
class Clock:
    now: float = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_sources = itertools.count(1)
_names = itertools.count(1)


def fresh_source() -> str:
    """A loopback source address no other test uses (127.1.x.y)."""
    n = next(_sources)
    return f"127.1.{n // 250}.{n % 250 + 1}"


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


@dataclass
class Running:
    settings: Settings
    store: Store
    ports: ApiPorts
    clock: Clock
    cert: Path
    _clients: list[httpx.Client] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.ports.https}"

    def client(
        self,
        auth: tuple[str, str] | None = None,
        source: str = "127.0.0.1",
        https: bool = True,
        **kwargs: Any,
    ) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cert))
        transport = httpx.HTTPTransport(verify=context, local_address=source)
        base = self.base if https else f"http://127.0.0.1:{self.ports.http}"
        client = httpx.Client(base_url=base, auth=auth, transport=transport, timeout=10, **kwargs)
        self._clients.append(client)
        return client

    def parent(
        self, plan: str = "default", proxies: list[str] | None = None, prefix: str = "parent"
    ) -> Parent:
        plan_config = self.settings.plan(plan)
        default = plan_config.default_proxies if plan_config else []
        username = unique(prefix)
        account = self.store.accounts.create(
            username,
            password_hash=parent_hash(),
            plan=plan,
            billing_day=1,
            proxies=default if proxies is None else proxies,
        )
        return Parent(self, username, account.id)

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


@dataclass
class Parent:
    api: Running
    username: str
    id: int

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, PASSWORD)

    def client(self, **kwargs: Any) -> httpx.Client:
        return self.api.client(auth=self.auth, **kwargs)

    def create_sub(self, client: httpx.Client, **fields: str) -> str:
        username = fields.pop("username", None) or unique("pm_sub")
        response = client.post("/api/sub/create/", data={"username": username, **fields})
        assert response.status_code == 200, response.text
        return username


def post_at_once(
    make_client: Callable[[], httpx.Client], path: str, forms: list[dict[str, str]]
) -> list[httpx.Response]:
    """POST each form to `path` from its own thread and client, all released together."""
    clients = [make_client() for _ in forms]
    start = threading.Barrier(len(forms), timeout=10)

    def post(client: httpx.Client, form: dict[str, str]) -> httpx.Response:
        start.wait()
        return client.post(path, data=form)

    with ThreadPoolExecutor(len(forms)) as pool:
        return list(pool.map(post, clients, forms, timeout=60))


_hash_cache: list[str] = []


def parent_hash() -> str:
    if not _hash_cache:
        _hash_cache.append(hash_password(PASSWORD))
    return _hash_cache[0]


class Loop:
    """One event loop in a daemon thread, hosting every test server."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    data: dict[str, Any] = {**BASE_SETTINGS, "data_dir": str(data_dir)}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return load_settings(None, **data)


StartServer = Callable[..., Running]
