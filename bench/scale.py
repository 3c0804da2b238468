"""Scale measurements for docs/scaling.md, on this machine's PostgreSQL and Redis:

    .venv/bin/python -m bench.scale [--accounts 100000]

1. a proxy node's directory with N sub-accounts and N authenticated IPs: load time
   (the store query, then building the in-memory maps), memory per account, lookup time;
2. Redis: one node's usage flush (one script call) for 1,000 and 10,000 active accounts,
   and the cumulative-counter reads;
3. PostgreSQL: one fold of 1,000 and 10,000 accounts' counters from one meter, and of
   10,000 from 100 meters (proxy processes): rows written, time.
Each run uses a fresh schema and Redis prefix, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
import tracemalloc
import uuid
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from bench.local import REDIS, create_schema, drop_scratch

from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.passwords import hash_password
from meshproxy.fleet import async_client
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.meter.shared import RedisMeter
from meshproxy.proxy.core.directory import AccountDirectory
from meshproxy.store import Store, tables


def seed(store: Store, accounts: int) -> list[tuple[int, int]]:
    """One parent, `accounts` sub-accounts each with a password and one IP (bulk SQL)."""
    parent = store.accounts.create("scale_parent", plan="default", billing_day=1,
                                  proxies=["open", "world"])
    digest = hash_password("scale-password")
    now = datetime.now(UTC)
    with store.engine.begin() as connection:
        for start in range(0, accounts, 10_000):
            rows = [{"username": f"s{i}", "parent_id": parent.id, "password_hash": digest,
                     "active": True, "monthly_limit_gb": i % 3, "total_limit_gb": 0,
                     "total_bytes": 0, "folded_bytes": 0, "created_at": now}
                    for i in range(start, min(start + 10_000, accounts))]
            connection.execute(sa.insert(tables.accounts), rows)
        ids = connection.execute(
            sa.select(tables.accounts.c.id).where(tables.accounts.c.parent_id == parent.id)
        ).scalars().all()
        for start in range(0, len(ids), 10_000):
            connection.execute(sa.insert(tables.authenticated_ips), [
                {"account_id": account_id, "ip": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}
                for n, account_id in enumerate(ids[start:start + 10_000], start=start)
            ])
    return [(i, parent.id) for i in ids]


def measure_directory(store: Store, accounts: int) -> None:
    now = datetime.now(UTC)
    started = time.perf_counter()
    views = store.accounts.views(now)
    query = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    directory = AccountDirectory(BanPolicy())
    started = time.perf_counter()
    directory.load(views, now, {})
    build = time.perf_counter() - started
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_account = (after - before) / len(views)
    print(f"directory: {len(views)} accounts; store query {query:.2f} s, build {build:.2f} s; "
          f"{per_account:.0f} bytes per account (with its IP) in the directory")
    del views
    samples = []
    for n in range(0, accounts, max(1, accounts // 2000)):
        ip = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        started = time.perf_counter()
        result = directory.authenticate(ip, None, time.time())
        samples.append(time.perf_counter() - started)
        assert not isinstance(result, Exception)
    print(f"lookup by IP: median {statistics.median(samples) * 1e6:.2f} us, "
          f"p99 {sorted(samples)[int(len(samples) * 0.99)] * 1e6:.2f} us")
    state = directory.by_username["s1"]
    started = time.perf_counter()
    for _ in range(100_000):
        directory.refusal(state, "open")
    print(f"decision (active, authorized, quota): {(time.perf_counter() - started) * 10:.2f} us")


async def measure_redis(pairs: list[tuple[int, int]], prefix: str) -> list[int]:
    client = async_client(REDIS)
    keys = UsageKeys(prefix)
    results = []
    for active in (1_000, 10_000):
        meter = RedisMeter(client, keys)
        timings = []
        server_before = _script_usec()
        for _ in range(5):
            for account_id, parent_id in pairs[:active]:
                meter.add(account_id, parent_id, 12_345)
            started = time.perf_counter()
            await meter.flush()
            timings.append(time.perf_counter() - started)
        results.append(active)
        print(f"redis flush of {active} active accounts: median "
              f"{statistics.median(timings) * 1000:.1f} ms per call "
              f"({2 * active + 2} commands in one script call; Redis busy "
              f"{(_script_usec() - server_before) / 5000:.1f} ms of it)")
        started = time.perf_counter()
        await meter.refresh_shared([a for a, _ in pairs[:active]])
        print(f"  cumulative counters of {active} accounts (HMGET): "
              f"{(time.perf_counter() - started) * 1000:.1f} ms")
    await client.aclose()
    return results


def _script_usec() -> float:
    """Microseconds Redis has spent running scripts (EVALSHA), from INFO commandstats."""
    client = redis.Redis.from_url(REDIS)
    stats = client.info("commandstats")
    client.close()
    return float(stats.get("cmdstat_evalsha", {}).get("usec", 0)) + float(
        stats.get("cmdstat_eval", {}).get("usec", 0))


def measure_fold(store: Store, pairs: list[tuple[int, int]], prefix: str) -> None:
    keys = UsageKeys(prefix)
    client = redis.Redis.from_url(REDIS)
    folder = UsageFolder(client, keys, store.folds)
    folder.fold()  # what measure_redis left
    for active, meters in ((1_000, 1), (10_000, 1), (10_000, 100)):
        asyncio.run(_flush_once(pairs[:active], prefix, meters))
        started = time.perf_counter()
        result = folder.fold()
        elapsed = time.perf_counter() - started
        print(f"fold of {active} accounts' counters from {meters} meter(s): "
              f"{elapsed * 1000:.0f} ms, {result.folded} batch(es); PostgreSQL rows written: "
              f"{active + 1} usage_daily upserts + {active + 1} account updates + "
              f"{meters} meter_folds, one transaction")
    client.close()


async def _flush_once(pairs: list[tuple[int, int]], prefix: str, meters: int) -> None:
    """One flush each from `meters` meters (proxy processes), the accounts split among
    them."""
    client = async_client(REDIS)
    for index in range(meters):
        meter = RedisMeter(client, UsageKeys(prefix))
        for account_id, parent_id in pairs[index::meters]:
            meter.add(account_id, parent_id, 1000)
        await meter.flush()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100_000)
    args = parser.parse_args()
    schema = f"scale_{uuid.uuid4().hex[:10]}"
    prefix = f"scale-{schema}:"
    store = Store.open(create_schema(schema))
    try:
        started = time.perf_counter()
        pairs = seed(store, args.accounts)
        seconds = time.perf_counter() - started
        print(f"seeded {args.accounts} sub-accounts and IPs in {seconds:.1f} s")
        measure_directory(store, args.accounts)
        asyncio.run(measure_redis(pairs, prefix))
        measure_fold(store, pairs, prefix)
    finally:
        store.close()
        drop_scratch(schema, prefix)


if __name__ == "__main__":
    main()
