"""`meshproxy db ...`: schema migrations."""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from
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
        raise click.ClickException(f"database unreachable: {error}") from None
    click.echo(f"database at revision {current_revision(store.engine)}")
    store.close()
