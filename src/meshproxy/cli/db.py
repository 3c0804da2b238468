"""`meshproxy db ...`: schema migrations, and folding shared usage into the store."""

from __future__ import annotations

import time
from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from, store_unreachable
from meshproxy.fleet import open_store, sync_client
from meshproxy.meter.fold import UsageFolder
from meshproxy.meter.keys import UsageKeys
from meshproxy.store import Store, StoreUnavailable
from meshproxy.store.migrate import current_revision


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@config_option
def upgrade(config_path: Path | None) -> None:
    """Apply all pending migrations."""
    settings = settings_from(config_path)
    try:
        store = Store.open(settings.database_url)
    except StoreUnavailable as error:
        raise store_unreachable(error) from None
    click.echo(f"database at revision {current_revision(store.engine)}")
    store.close()


@db.command()
@config_option
@click.option("--watch", is_flag=True, help="Keep folding until stopped.")
@click.option("--interval", default=None, type=float, help="Seconds between folds [config].")
def fold(config_path: Path | None, watch: bool, interval: float | None) -> None:
    """Move the usage counted in Redis into the store (each byte exactly once; safe to
    run on many hosts at once and to kill at any moment)."""
    settings = settings_from(config_path)
    if not settings.redis_url:
        raise click.UsageError("redis_url is not set: usage is written to the store directly")
    try:
        store = open_store(settings)
    except StoreUnavailable as error:
        raise store_unreachable(error) from None
    folder = UsageFolder(
        sync_client(settings.redis_url), UsageKeys(settings.shared.prefix), store.folds
    )
    pause = settings.shared.fold_interval if interval is None else interval
    try:
        while True:
            result = folder.fold()
            if not watch:
                click.echo(
                    f"folded {result.folded} batches, {result.nbytes} bytes"
                    f" ({result.skipped} already in the store)"
                )
                return
            time.sleep(pause)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
