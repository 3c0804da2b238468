"""`meshproxy proxy --config FILE`: a node that runs only the proxy listeners."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from
from meshproxy.config import Settings
from meshproxy.proxy.fdlimit import raise_fd_limit
from meshproxy.store import Store, StoreUnavailable


@click.command()
@config_option
@click.option("--drain-timeout", default=10.0, show_default=True, help="Seconds to drain on stop.")
@click.option(
    "--no-metering",
    is_flag=True,
    hidden=True,
    help="Count no usage (benchmarks only: measures what metering costs).",
)
def proxy(config_path: Path | None, drain_timeout: float, no_metering: bool) -> None:
    """Run the configured proxy listeners (no API, no dashboard) until SIGTERM/SIGINT."""
    settings = settings_from(config_path)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    raise_fd_limit()
    try:
        store = Store.open(settings.database_url)
    except StoreUnavailable as error:
        raise click.ClickException(f"database unreachable: {error}") from None
    try:
        _run_loop(_serve(settings, store, drain_timeout, metering=not no_metering))
    finally:
        store.close()


def _run_loop(main: object) -> None:
    try:
        import uvloop
    except ImportError:  # not on this platform: the standard loop works, only slower
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]


async def _serve(
    settings: Settings, store: Store, drain_timeout: float, *, metering: bool = True
) -> None:
    from meshproxy.meter.null import NullMeter
    from meshproxy.proxy.node import ProxyNode

    node = ProxyNode(settings, store, meter=None if metering else NullMeter())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await node.start()
    for name, (host, port) in node.addresses.items():
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"proxy {name} listening on {shown}:{port}")
    await stop.wait()
    click.echo("stopping: draining connections and flushing usage")
    await node.stop(drain_timeout)
