"""`meshproxy admin audit`: the audit log of control-plane changes (API, dashboard and
admin CLI), newest first: who, what, when, from where."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from meshproxy.cli.logs import _moment
from meshproxy.cli.options import config_option, settings_from
from meshproxy.cli.output import emit_rows

COLUMNS = ["time", "actor", "operation", "target", "fields", "via", "client", "owner"]


@click.command("audit")
@click.option("--account", help="Changes this account made, was the target of, or owns.")
@click.option("--since", help="From this time (ISO 8601, UTC without a zone, or epoch seconds).")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="At most this many entries (the newest).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@config_option
def audit(
    account: str | None, since: str | None, limit: int, as_json: bool, config_path: Path | None
) -> None:
    """List control-plane changes: accounts, limits, IPs, hostnames, proxies, webhooks, bans."""
    from meshproxy.store import Store, StoreUnavailable

    start = _moment(since, "--since")
    settings = settings_from(config_path)
    try:
        store = Store.open(settings.database_url)
        try:
            entries = store.audit.entries(
                account=account,
                since=None if start is None else datetime.fromtimestamp(start, UTC),
                limit=limit,
            )
        finally:
            store.close()
    except StoreUnavailable as error:
        raise click.ClickException(f"database unreachable: {error}") from None
    rows = [
        {
            "time": entry.at.isoformat(timespec="seconds"),
            "actor": entry.actor,
            "operation": entry.operation,
            "target": entry.target,
            "fields": dict(entry.fields),
            "via": entry.via,
            "client": entry.client,
            "owner": entry.owner,
        }
        for entry in entries
    ]
    emit_rows(rows, COLUMNS, as_json=as_json, title=f"Audit log ({len(rows)} entries)")
