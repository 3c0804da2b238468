"""`meshproxy api-node --config FILE`: a node that runs only the API and the dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.options import config_option, settings_from, workers_option


@click.command("api-node")
@config_option
@workers_option
def api_node(config_path: Path | None, workers: int) -> None:
    """Run the API and the dashboard (no proxies) until SIGTERM/SIGINT."""
    run_api_node(config_path, workers)


def run_api_node(config_path: Path | None, workers: int) -> None:
    from meshproxy.cli.node import Role, run  # the server, imported only to serve

    run(settings_from(config_path), Role(api=True, proxies=False), workers)
