"""Running a node: its roles (API and dashboard, proxies, or both) in one event loop per
process, and `--workers N` processes sharing the listening ports (SO_REUSEPORT).

Every serving address is tried first (bound and released), so a busy port stops the start
before anything is created, with an error naming the address and the port. Then
migrations and the first-run parent happen once, here in the parent process, before any
worker is forked; the parent's credentials go to their file at once (banner.py). Each
worker then opens its own connections (SQLite in WAL mode is safe for several processes;
usage is flushed per worker and bans are shared via the store or Redis). SIGTERM/SIGINT to
the parent reach every worker: each drains and flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from meshproxy.cli.options import store_unreachable
from meshproxy.config import ListenerAddress, Settings
from meshproxy.fleet import open_store, sync_client
from meshproxy.meter import Meter
from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.server.fdlimit import raise_fd_limit
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store, StoreUnavailable

if TYPE_CHECKING:  # the API side, and folding (Redis), imported only by nodes that use them
    from pathlib import Path

    from meshproxy.api.server import ApiPorts, ApiServer
    from meshproxy.cli.banner import FirstRun
    from meshproxy.control.alerts import AlertsTask
    from meshproxy.meter.fold import FoldingTask

log = logging.getLogger("meshproxy")

_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)
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
        raise store_unreachable(error) from None


async def run_node(
    settings: Settings,
    role: Role,
    *,
    first_run: FirstRun | None = None,
    reuse_port: bool = False,
    worker: int = 0,
    workers: int = 1,
) -> None:
    stop = stop_signal()
    store = await asyncio.to_thread(open_store, settings, migrate=False)
    api_server: ApiServer | None = None
    proxy_node: ProxyNode | None = None
    folding = _folding(settings, store) if worker == 0 else None
    status = NodeStatus(store=store, api=role.api, folding=folding)
    status.count_unconfigured_plans = functools.partial(unconfigured_plans, settings, store)
    with contextlib.suppress(StoreUnavailable):  # a worker restarted while the store is down
        status.unconfigured_plans = await asyncio.to_thread(status.count_unconfigured_plans)
    admin: AdminServer | None = None
    alerts: AlertsTask | None = None
    try:
        if role.proxies:
            meter = None if role.meter is None else role.meter()
            proxy_node = ProxyNode(
                settings, store, meter=meter, reuse_port=reuse_port,
                certificate=_proxy_certificate(settings),
            )
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
            try:
                ports = await api_server.start()
            except OSError as error:
                if error.errno not in _BIND_ERRORS or error.filename is not None:
                    raise
                # A port taken since check_listeners; uvicorn's bind error names no address.
                raise OSError(error.errno, _api_bind_error(settings, error)) from None
        if role.api and worker == 0 and settings.alerts.enabled:
            from meshproxy.control.alerts import AlertsTask

            alerts = AlertsTask(settings, store)
            alerts.start()
        if folding is not None:
            folding.start()
        admin = await _admin(settings, status, worker, workers)
        _settle()
        if worker == 0:
            click.echo(_announcement(settings, ports, proxy_node, first_run))
            sys.stdout.flush()
        await stop.wait()
        log.info("stopping: draining connections and flushing usage")
    finally:
        if admin is not None:
            await admin.stop()
        if proxy_node is not None:
            await proxy_node.stop(role.drain_timeout)
        if alerts is not None:
            await alerts.stop()
        if api_server is not None:
            await api_server.stop()
        if folding is not None:
            await folding.stop()  # after the proxies' last flush: this node leaves no usage
        store.close()


def _settle() -> None:
    """Ready: what start-up made (modules, the store's tables, configuration) lives as long
    as the node, so it leaves the garbage collector's walks. A full collection otherwise
    walks all of it (about 50,000 objects, 15-25 ms with the loop stopped: the p99 of the
    requests in flight then)."""
    gc.collect()
    gc.freeze()


async def _admin(
    settings: Settings, status: NodeStatus, worker: int, workers: int = 1
) -> AdminServer | None:
    """The admin listener; worker i of a node listens on `admin.port + i`, and the first
    one's /metrics covers every worker (ops/workers.py). A port that is taken costs the
    node its metrics, not its service: logged loudly, not fatal."""
    config = settings.admin
    if not config.enabled:
        return None
    port = config.port + worker if config.port else 0
    peers = [(i, config.port + i) for i in range(1, workers)] if worker == 0 and port else []
    admin = AdminServer(status, config.listen, port, peers)
    try:
        port = await admin.start()
    except OSError as error:
        log.error(
            "admin listener (health, metrics) not started on %s: %s",
            _address(config.listen, port),
            error.strerror or error,
        )
        return None
    log.info("admin listener: http://%s:%d/metrics", config.listen, port)
    return admin


def _folding(settings: Settings, store: Store) -> FoldingTask | None:
    """With Redis, the first worker of every node folds usage into the store (any number
    of folders may run; each batch is folded once)."""
    if not settings.redis_url or not settings.shared.fold:
        return None
    from meshproxy.meter.fold import FoldingTask, UsageFolder  # Redis's only
    from meshproxy.meter.keys import UsageKeys

    folder = UsageFolder(
        sync_client(settings.redis_url), UsageKeys(settings.shared.prefix), store.folds
    )
    return FoldingTask(folder, settings.shared.fold_interval)


def _announcement(
    settings: Settings,
    ports: ApiPorts | None,
    proxy_node: ProxyNode | None,
    first_run: FirstRun | None,
) -> str:
    if ports is None and proxy_node is not None:  # a proxy-only node: one line a listener
        listeners = (("", proxy_node.addresses), (" SOCKS5", proxy_node.socks_addresses),
                     (" HTTPS", proxy_node.tls_addresses))  # fmt: skip
        return "\n".join(
            f"proxy {name}{kind} listening on {f'[{host}]' if ':' in host else host}:{port}"
            for kind, bound in listeners
            for name, (host, port) in bound.items()
        )
    from meshproxy.cli.banner import banner

    return banner(settings, ports, proxy_node, first_run)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


def _api_bind_error(settings: Settings, error: OSError) -> str:
    api = settings.api
    ports = f"https_port {api.https_port}"
    if api.tls and api.http_port is not None:
        ports += f" or http_port {api.http_port}"
    return f"API on {api.listen or '*'} ({ports}): {error.strerror or error}"


def _proxy_certificate(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate of the proxies' TLS listeners (tls_port): the API's, the
    configured files or the generated self-signed one (api/tls.py)."""
    if all(p.tls_bind_port is None for p in settings.proxies):
        return None
    from meshproxy.api.tls import ensure_certificate

    return ensure_certificate(settings)


def _serving_listeners(settings: Settings, role: Role) -> list[ListenerAddress]:
    """The listeners whose failure stops the node (the admin listener's does not)."""
    faces = {"api"} if role.api else set()
    faces |= {"proxy"} if role.proxies else set()
    return [listener for listener in settings.listeners() if listener.face in faces]


def check_listeners(settings: Settings, role: Role, *, reuse_port: bool) -> None:
    """Bind every serving address once (and release it) before anything is created: a
    busy or forbidden port stops the start here, with an error naming it."""
    for what, host, port, _face in _serving_listeners(settings, role):
        try:
            for family, kind, proto, _name, address in socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            ):
                with socket.socket(family, kind, proto) as probe:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if reuse_port:
                        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if family == socket.AF_INET6:
                        probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probe.bind(address)
        except OSError as error:
            raise click.ClickException(
                f"cannot listen on {_address(host, port)} ({what}): {error.strerror or error}"
            ) from None


def unconfigured_plans(settings: Settings, store: Store) -> dict[str, int]:
    """Plans that parent accounts are on but the configuration no longer declares, with
    how many parents each: the API answers those parents 503 until the operator acts."""
    known = {plan.name for plan in settings.plans}
    found: dict[str, int] = {}
    for account in store.accounts.list(parents=True):
        plan = account.plan or ""
        if plan not in known:
            found[plan] = found.get(plan, 0) + 1
    return found


def _warn_unconfigured_plans(found: dict[str, int]) -> None:
    if found:
        listed = ", ".join(f"{name!r} ({count} parents)" for name, count in sorted(found.items()))
        log.warning(
            "parent accounts are on plans the configuration does not declare: %s; the API "
            "answers them 503 until the plans are declared again or the accounts are moved "
            "(meshproxy admin set USERNAME --plan PLAN)",
            listed,
        )


def _first_run(settings: Settings, store: Store) -> FirstRun | None:
    """The first-run parent: created on an empty store (unless `first_parent` is off), its
    credentials written to their file at once; or the one an earlier start created, while
    its file exists."""
    from meshproxy.cli.banner import FirstRun, save_credentials, saved_credentials
    from meshproxy.control import operator

    if settings.first_parent:
        created = operator.seed_first_parent(settings, store)
        if created is not None:
            first_run = FirstRun(created.account.username, created.password)
            save_credentials(settings, first_run, [])  # the curl lines once listening
            return first_run
    return saved_credentials(settings, store)


class _FirstOnly(logging.Filter):
    """Passes only the first record starting with `message`: uvicorn logs "Started server
    process" once for each of the API's listeners."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith(self.message):
            if self.seen:
                return False
            self.seen = True
        return True


def run(settings: Settings, role: Role, workers: int = 1) -> None:
    """Check the ports, prepare the store once, then serve in this process or in `workers`
    children."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("uvicorn.error").addFilter(_FirstOnly("Started server process"))
    check_listeners(settings, role, reuse_port=workers > 1)
    if role.proxies:
        raise_fd_limit()  # before any fork: workers inherit it
    store = _open(settings)  # migrations, once
    first_run: FirstRun | None = None
    try:
        if role.api:
            first_run = _first_run(settings, store)
        _warn_unconfigured_plans(unconfigured_plans(settings, store))
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
    if role.proxies:
        _proxy_certificate(settings)  # made once before the fork, as the API's
    if workers <= 1:
        _serve(settings, role, first_run, reuse_port=False, worker=0, workers=1)
        return
    sys.exit(_supervise(settings, role, first_run, workers))


def _serve(
    settings: Settings,
    role: Role,
    first_run: FirstRun | None,
    *,
    reuse_port: bool,
    worker: int,
    workers: int,
) -> None:
    try:
        run_loop(
            run_node(
                settings,
                role,
                first_run=first_run,
                reuse_port=reuse_port,
                worker=worker,
                workers=workers,
            )
        )
    except OSError as error:
        raise click.ClickException(f"cannot listen: {error}") from None


def _fork_worker(
    settings: Settings, role: Role, first_run: FirstRun | None, worker: int, workers: int
) -> int:
    sys.stdout.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        _serve(settings, role, first_run, reuse_port=True, worker=worker, workers=workers)
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
    settings: Settings, role: Role, first_run: FirstRun | None, workers: int
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
        first = first_run if index == 0 else None
        pids[_fork_worker(settings, role, first, index, workers)] = index
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
        pids[_fork_worker(settings, role, None, index, workers)] = index
        started[index] = time.monotonic()
    return 1 if failed else 0
