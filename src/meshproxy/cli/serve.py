"""`meshproxy serve`: the API, the dashboard and every configured proxy in one node."""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.node import Role, run
from meshproxy.cli.options import config_option, settings_from, workers_option


@click.command()
@config_option
@workers_option
def serve(config_path: Path | None, workers: int) -> None:
    """Run the API, the dashboard and every configured proxy (both roles) in one node."""
    run(settings_from(config_path), Role(api=True, proxies=True), workers)
