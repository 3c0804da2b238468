"""`meshproxy serve`: the API, the dashboard and every configured proxy in one node."""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.node import Role, run
from meshproxy.cli.options import config_option, settings_from, workers_option


@click.command()
@config_option
@workers_option
@click.option(
    "--no-first-parent",
    is_flag=True,
    help="On an empty store, create no first-run parent account (setting: first_parent).",
)
def serve(config_path: Path | None, workers: int, no_first_parent: bool) -> None:
    """Run the API, the dashboard and every configured proxy (both roles) in one node."""
    settings = settings_from(config_path)
    if no_first_parent:
        settings = settings.model_copy(update={"first_parent": False})
    run(settings, Role(api=True, proxies=True), workers)
