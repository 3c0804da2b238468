"""`meshproxy proxy --config FILE`: a node that runs only the proxy listeners."""

from __future__ import annotations

from pathlib import Path

import click

from meshproxy.cli.node import Role, run
from meshproxy.cli.options import config_option, settings_from, workers_option
from meshproxy.meter.null import NullMeter


@click.command()
@config_option
@workers_option
@click.option("--drain-timeout", default=10.0, show_default=True, help="Seconds to drain on stop.")
@click.option(
    "--no-metering",
    is_flag=True,
    hidden=True,
    help="Count no usage (benchmarks only: measures what metering costs).",
)
def proxy(config_path: Path | None, workers: int, drain_timeout: float, no_metering: bool) -> None:
    """Run the configured proxy listeners (no API, no dashboard) until SIGTERM/SIGINT."""
    role = Role(
        api=False,
        proxies=True,
        drain_timeout=drain_timeout,
        meter=NullMeter if no_metering else None,
    )
    run(settings_from(config_path), role, workers)
