"""Running a node: its roles (API and dashboard, proxies, or both) in one event loop per
process, and `--workers N` processes sharing the listening ports (SO_REUSEPORT).

Migrations and the first-run parent happen once, here in the parent process, before any
worker is forked; each worker then opens its own connections (SQLite in WAL mode is safe
for several processes; usage is flushed per worker and bans are shared via the store or
Redis). SIGTERM/SIGINT to the parent reach every worker: each drains and flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from meshproxy.config import Settings
from meshproxy.meter import Meter
from meshproxy.meter.fold import FoldingTask, UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.server.fdlimit import raise_fd_limit
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.shared import open_store, sync_client
from meshproxy.store import Store, StoreUnavailable

if TYPE_CHECKING:  # the API side is imported only by nodes that serve it
    from meshproxy.api.server import ApiPorts, ApiServer
    from meshproxy.control import operator

log = logging.getLogger("meshproxy")

STARTUP_SECONDS = 5.0  # a worker that dies sooner is not restarted: it would die again


@dataclass(frozen=True)
class Role:
    api: bool
    proxies: bool
    drain_timeout: float = 10.0
    meter: type[Meter] | None = None  # None: the node's own (local or Redis)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (the data plane's event loop), else asyncio."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
        return
    uvloop.run(main)


def stop_signal() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; install it before listening so none is missed."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


def _open(settings: Settings) -> Store:
    try:
        return open_store(settings)
    except StoreUnavailable as error:
        raise click.ClickException(f"database unreachable: {error}") from None


async def run_node(
    settings: Settings,
    role: Role,
    *,
    new_parent: operator.NewParent | None = None,
    reuse_port: bool = False,
    worker: int = 0,
) -> None:
    stop = stop_signal()
    store = await asyncio.to_thread(open_store, settings, migrate=False)
    api_server: ApiServer | None = None
    proxy_node: ProxyNode | None = None
    folding = _folding(settings, store) if worker == 0 else None
    status = NodeStatus(store=store, api=role.api, folding=folding)
    admin: AdminServer | None = None
    try:
        if role.proxies:
            meter = None if role.meter is None else role.meter()
            proxy_node = ProxyNode(settings, store, meter=meter, reuse_port=reuse_port)
            status.proxy_node = proxy_node
            await proxy_node.start()
        ports: ApiPorts | None = None
        if role.api:
            from meshproxy.api.app import create_app
            from meshproxy.api.forwarding import Forwarding
            from meshproxy.api.server import ApiServer
            from meshproxy.ops.routes import health_routes
            from meshproxy.web import dashboard_routes

            dashboard = dashboard_routes(
                settings, store, clients=Forwarding(settings.api.trusted_proxies)
            )
            app = create_app(settings, store, mounts=[*health_routes(status), *dashboard])
            api_server = ApiServer(settings, app, reuse_port=reuse_port)
            ports = await api_server.start()
        if folding is not None:
            folding.start()
        admin = await _admin(settings, status, worker)
        if worker == 0:
            click.echo(_announcement(settings, ports, proxy_node, new_parent))
            sys.stdout.flush()
        await stop.wait()
        log.info("stopping: draining connections and flushing usage")
    finally:
        if admin is not None:
            await admin.stop()
        if proxy_node is not None:
            await proxy_node.stop(role.drain_timeout)
        if api_server is not None:
            await api_server.stop()
        if folding is not None:
            await folding.stop()  # after the proxies' last flush: this node leaves no usage
        store.close()


async def _admin(settings: Settings, status: NodeStatus, worker: int) -> AdminServer | None:
    """The admin listener; worker i of a node listens on `admin.port + i`. A port that is
    taken costs the node its metrics, not its service: logged loudly, not fatal."""
    config = settings.admin
    if not config.enabled:
        return None
    admin = AdminServer(status, config.listen, config.port + worker if config.port else 0)
    try:
        port = await admin.start()
    except OSError as error:
        log.error("admin listener (health, metrics) not started: %s", error)
        return None
    log.info("admin listener: http://%s:%d/metrics", config.listen, port)
    return admin


def _folding(settings: Settings, store: Store) -> FoldingTask | None:
    """With Redis, the first worker of every node folds usage into the store (any number
    of folders may run; each batch is folded once)."""
    if not settings.redis_url or not settings.shared.fold:
        return None
    folder = UsageFolder(sync_client(settings.redis_url), UsageKeys(settings.shared.prefix), store)
    return FoldingTask(folder, settings.shared.fold_interval)


def _announcement(
    settings: Settings,
    ports: ApiPorts | None,
    proxy_node: ProxyNode | None,
    new_parent: operator.NewParent | None,
) -> str:
    if ports is None and proxy_node is not None:  # a proxy-only node: one line a listener
        return "\n".join(
            f"proxy {name} listening on {f'[{host}]' if ':' in host else host}:{port}"
            for name, (host, port) in proxy_node.addresses.items()
        )
    from meshproxy.cli.banner import banner

    return banner(settings, ports, proxy_node, new_parent)


def run(settings: Settings, role: Role, workers: int = 1) -> None:
    """Prepare the store once, then serve in this process or in `workers` children."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if role.proxies:
        raise_fd_limit()  # before any fork: workers inherit it
    store = _open(settings)  # migrations, once
    new_parent: operator.NewParent | None = None
    try:
        if role.api:
            from meshproxy.control import operator

            new_parent = operator.seed_first_parent(settings, store)
    finally:
        store.close()  # nothing shared across the fork
    if role.api:
        from meshproxy.api.tls import ensure_certificate
        from meshproxy.web.secret import load_or_create_secret

        # Files every worker must share, made once before the fork: workers generating them
        # at the same time would pair one worker's key with another's certificate.
        if settings.api.tls:
            ensure_certificate(settings)
        load_or_create_secret(settings.data_dir)
    if workers <= 1:
        _serve(settings, role, new_parent, reuse_port=False, worker=0)
        return
    sys.exit(_supervise(settings, role, new_parent, workers))


def _serve(
    settings: Settings,
    role: Role,
    new_parent: operator.NewParent | None,
    *,
    reuse_port: bool,
    worker: int,
) -> None:
    try:
        run_loop(
            run_node(settings, role, new_parent=new_parent, reuse_port=reuse_port, worker=worker)
        )
    except OSError as error:
        raise click.ClickException(f"cannot listen: {error}") from None


def _fork_worker(
    settings: Settings, role: Role, new_parent: operator.NewParent | None, worker: int
) -> int:
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        _serve(settings, role, new_parent, reuse_port=True, worker=worker)
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except BaseException:
        log.exception("worker %d failed", worker)
        code = 1
    finally:
        sys.stdout.flush()
        os._exit(code)


def _supervise(
    settings: Settings, role: Role, new_parent: operator.NewParent | None, workers: int
) -> int:
    """Fork the workers, pass SIGTERM/SIGINT on, restart a worker that dies (at most once
    a second), and return when all have stopped after a signal."""
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    pids: dict[int, int] = {}
    started: dict[int, float] = {}
    for index in range(workers):
        # Only the first worker prints the banner (and the first-run credentials).
        pids[_fork_worker(settings, role, new_parent if index == 0 else None, index)] = index
        started[index] = time.monotonic()
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    failed = 0
    while pids:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = pids.pop(pid, -1)
        if index < 0:
            continue
        code = os.waitstatus_to_exitcode(status)
        if stopping:
            failed |= code != 0
            continue
        if time.monotonic() - started[index] < STARTUP_SECONDS:
            log.error("worker %d failed at start (%d); stopping", index, code)
            failed = 1
            forward(signal.SIGTERM, None)
            continue
        log.error("worker %d exited (%d); restarting it", index, code)
        time.sleep(1.0)
        pids[_fork_worker(settings, role, None, index)] = index
        started[index] = time.monotonic()
    return 1 if failed else 0
