"""`meshproxy admin bans`: the client IPs banned now, and those counting failures toward a
ban, from the store (and Redis, where configured: bans decided there too)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from, store_unreachable
from meshproxy.cli.output import emit_rows


@click.command("bans")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@config_option
def bans(as_json: bool, config_path: Path | None) -> None:
    """List banned client IPs (until when) and authentication failures within the window."""
    from meshproxy.fleet import open_store
    from meshproxy.store import StoreUnavailable

    settings = settings_from(config_path)
    now = time.time()
    try:
        store = open_store(settings)
        try:
            banned = store.bans.active(now)
            failures = store.bans.failure_counts(now - settings.ban.window_seconds)
        finally:
            store.close()
    except StoreUnavailable as error:
        raise store_unreachable(error) from None
    rows = [
        {
            "address": address,
            "until": _iso(banned[address]) if address in banned else None,
            "failures": failures.get(address, 0),
        }
        for address in sorted(
            banned.keys() | failures.keys(), key=lambda a: (-banned.get(a, 0.0), a)
        )
    ]
    emit_rows(rows, ["address", "until", "failures"], as_json=as_json, title="Bans")


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
