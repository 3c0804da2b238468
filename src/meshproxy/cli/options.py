"""Options shared by the commands that read the server configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from meshproxy.config import ConfigError, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def config_option(function: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="MESHPROXY_CONFIG",
        default=None,
        help="TOML configuration file (default: built-in defaults; env: MESHPROXY_CONFIG).",
    )(function)


def workers_option(function: F) -> F:
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Processes sharing the ports (SO_REUSEPORT): one per core uses every core.",
    )(function)


def settings_from(config_path: Path | None) -> Settings:
    try:
        return load_settings(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
