"""Options shared by the commands that read the server configuration. The configuration
(config.py, msgspec) is imported only when a command reads it, not to build `--help`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from meshproxy.config import Settings

F = TypeVar("F", bound=Callable[..., Any])


def store_unreachable(error: Exception) -> click.ClickException:
    """The operator's error for a database the command cannot reach."""
    return click.ClickException(f"database unreachable: {error}")


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
    """The configuration, or a clean error: invalid, or a setting whose pip extra is missing."""
    from meshproxy import extras
    from meshproxy.config import ConfigError, load_settings

    try:
        settings = load_settings(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    problems = extras.problems(settings)
    if problems:
        raise click.ClickException("\n".join(problems))
    return settings
