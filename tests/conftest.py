"""Fixtures shared by every test package: settings, stores on real SQLite files and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from meshproxy import compiled
from meshproxy.config import Settings, load_settings
from meshproxy.domain import passwords
from meshproxy.store import Store

POSTGRES_URL = os.environ.get(
    "MESHPROXY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MESHPROXY_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a compiled module before its .py: never test old code."""
    stale = compiled.stale()
    if stale:
        names = ", ".join(str(path.relative_to(compiled.PACKAGE)) for path in stale)
        pytest.exit(
            f"compiled modules are older than their sources ({names}): `make compiled` "
            "rebuilds them, `make interpreted` removes them",
            returncode=2,
        )


def service_missing(what: str, error: Exception) -> None:
    """In CI a missing service fails the test; on a developer machine it skips it."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium for the browser tests (web.live.CHROMIUM); missing: as a service."""
    from web.live import CHROMIUM

    if not Path(CHROMIUM).exists():
        service_missing(CHROMIUM, FileNotFoundError("apt-get install chromium"))
    return CHROMIUM


@pytest.fixture(scope="session", autouse=True)
def fast_hashing() -> Iterator[None]:
    """argon2id at minimal cost for the whole suite: the same code paths, without
    50-150 ms per hash. (Processes the tests start use the real parameters.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
        )
        yield


@pytest.fixture(scope="session")
def missing_service() -> Callable[[str, Exception], None]:
    """`service_missing` for test packages that cannot import this module by name."""
    return service_missing


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Build Settings for a test: a data dir in tmp_path, loopback destinations allowed."""

    def build(**overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "data_dir": str(tmp_path / "data"),
            "proxy": {"allow_destinations": ["127.0.0.0/8", "::1/128"]},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = {**base[key], **value}
            else:
                base[key] = value
        return load_settings(None, **base)

    return build


@pytest.fixture
def make_geoip_database(tmp_path: Path) -> Callable[..., Path]:
    """Write a MaxMind-format (GeoLite2-Country layout, IPv6 tree holding IPv4) database:
    build({"127.0.0.2/31": "DE", ...}) -> its path in tmp_path."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    def build(networks: dict[str, str], name: str = "countries.mmdb") -> Path:
        writer = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", ipv4_compatible=True)
        for network, country in networks.items():
            writer.insert_network(IPSet([network]), {"country": {"iso_code": country}})
        path = tmp_path / name
        writer.to_db_file(str(path))
        return path

    return build


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL, dropped after the test."""
    admin_url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as error:
        service_missing("PostgreSQL", error)
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with engine.connect() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The local Redis (use it with `redis_prefix`, so tests never share keys)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        service_missing("Redis", error)
    yield REDIS_URL
    client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    import redis

    prefix = f"t{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    """Run a store test on both backends."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def db(store_url: str) -> Iterator[Store]:
    """A migrated store, once on SQLite and once on PostgreSQL."""
    opened = Store.open(store_url)
    yield opened
    opened.close()


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = Store.open(sqlite_url)
    yield opened
    opened.close()
