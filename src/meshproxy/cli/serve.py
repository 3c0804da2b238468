"""`meshproxy serve` (API, dashboard and proxies in one process) and `meshproxy api`."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from meshproxy import __version__
from meshproxy.api.app import create_app
from meshproxy.api.docs import DOCS_PATH
from meshproxy.api.forwarding import Forwarding
from meshproxy.api.server import ApiPorts, ApiServer
from meshproxy.api.tls import ensure_certificate
from meshproxy.cli.options import config_option, settings_from
from meshproxy.config import Settings
from meshproxy.control import operator
from meshproxy.domain.proxies import proxy_address
from meshproxy.proxy.fdlimit import raise_fd_limit
from meshproxy.proxy.node import ProxyNode
from meshproxy.store import Store, StoreUnavailable
from meshproxy.web import dashboard_routes

log = logging.getLogger("meshproxy")

CREDENTIALS_FILE = "first-run-credentials.txt"


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


def open_store(settings: Settings) -> Store:
    try:
        return Store.open(settings.database_url)
    except StoreUnavailable as error:
        raise click.ClickException(f"database unreachable: {error}") from None


def _api_url(settings: Settings, ports: ApiPorts) -> str:
    if settings.api.public_url:
        return settings.api.public_url.rstrip("/")
    host = settings.api.listen if settings.api.listen not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.api.tls else "http"
    return f"{scheme}://{host}:{ports.https}"


def _save_credentials(settings: Settings, text: str) -> Path:
    path = settings.data_dir / CREDENTIALS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return path


def banner(
    settings: Settings,
    ports: ApiPorts | None,
    proxy_node: ProxyNode | None,
    new_parent: operator.NewParent | None,
) -> str:
    """What `serve` prints once it listens: where everything is, and how to try it."""
    lines = [f"meshproxy {__version__} is running"]
    api_url = ""
    if ports is not None:
        api_url = _api_url(settings, ports)
        lines.append(f"  API:        {api_url}/api/   (interactive docs: {api_url}{DOCS_PATH})")
        lines.append(f"  Dashboard:  {api_url}/")
        if ports.http is not None:
            lines.append(f"  Plain HTTP: port {ports.http} (redirects to HTTPS)")
    if proxy_node is not None:
        for proxy, (host, port) in proxy_node.listening():
            lines.append(f"  Proxy:      {proxy_address(proxy)}  (listening on {host}:{port})")
    if new_parent is not None:
        username = new_parent.account.username
        password = new_parent.password
        credentials = f"{username}:{password}"
        try_lines = []
        if ports is not None:
            cacert = ""
            if settings.api.tls and settings.api.tls_cert is None:
                cacert = f"--cacert {shlex.quote(str(ensure_certificate(settings)[0]))} "
            try_lines.append(f"  curl {cacert}-u {shlex.quote(credentials)} {api_url}/api/proxies/")
        if proxy_node is not None and proxy_node.listening():
            _, (host, port) = proxy_node.listening()[0]
            proxy_url = f"http://{credentials}@{host}:{port}"
            try_lines.append(f"  curl -x {shlex.quote(proxy_url)} https://example.com/")
        saved = _save_credentials(
            settings,
            f"username: {username}\npassword: {password}\n" + "\n".join(try_lines) + "\n",
        )
        lines += [
            "",
            "First run: created a parent account (shown only now; also saved, owner-only, in",
            f"  {saved})",
            f"  username: {username}",
            f"  password: {password}",
            "",
            "Try:",
            *try_lines,
        ]
    lines += ["", "Stop with Ctrl-C (or SIGTERM): connections drain and usage is flushed."]
    return "\n".join(lines)


async def run_node(settings: Settings, *, api: bool, proxies: bool) -> None:
    stop = stop_signal()
    store = await asyncio.to_thread(open_store, settings)
    new_parent = None
    if api:  # a proxy-only node never creates accounts
        new_parent = await asyncio.to_thread(operator.seed_first_parent, settings, store)
    api_server: ApiServer | None = None
    proxy_node: ProxyNode | None = None
    try:
        if proxies:
            proxy_node = ProxyNode(settings, store)
            await proxy_node.start()
        ports = None
        if api:
            dashboard = dashboard_routes(
                settings, store, clients=Forwarding(settings.api.trusted_proxies)
            )
            app = create_app(settings, store, mounts=dashboard)
            api_server = ApiServer(settings, app)
            ports = await api_server.start()
        click.echo(banner(settings, ports, proxy_node, new_parent))
        sys.stdout.flush()
        await stop.wait()
        log.info("stopping: draining connections and flushing usage")
    finally:
        if proxy_node is not None:
            await proxy_node.stop()
        if api_server is not None:
            await api_server.stop()
        store.close()


def _run(config_path: Path | None, *, api: bool, proxies: bool) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = settings_from(config_path)
    if proxies:
        raise_fd_limit()
    try:
        run_loop(run_node(settings, api=api, proxies=proxies))
    except OSError as error:
        raise click.ClickException(f"cannot listen: {error}") from None


@click.command()
@config_option
def serve(config_path: Path | None) -> None:
    """Run the API, the dashboard and every configured proxy in one process."""
    _run(config_path, api=True, proxies=True)


@click.command("api-server")
@config_option
def api_server(config_path: Path | None) -> None:
    """Run only the API and the dashboard (an API node)."""
    _run(config_path, api=True, proxies=False)
