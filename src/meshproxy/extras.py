"""Optional dependencies: the pip extras, and the settings that need each one.

`pip install meshproxy` runs nodes on SQLite with usage counted locally; PostgreSQL
(`database_url`), Redis (`redis_url`) and GeoIP tagging (`geoip_database`) each need an
extra: `pip install 'meshproxy[postgres,redis,geoip]'`. A setting whose extra is missing
is reported at start by name, with the command that installs it, instead of as an
ImportError from deep inside a node. Nothing here imports the optional packages.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Protocol

# extra -> the module it installs
EXTRAS = {"postgres": "psycopg", "redis": "redis", "geoip": "maxminddb"}
POSTGRES_SCHEMES = ("postgresql", "postgresql+psycopg")


class Configured(Protocol):
    """The settings that need an extra (config.Settings has them; config imports this
    module through geoip, so it is not imported here)."""

    @property
    def database_url(self) -> str: ...
    @property
    def redis_url(self) -> str: ...
    @property
    def geoip_database(self) -> Path | None: ...


def missing(extra: str, setting: str) -> str | None:
    """Why `setting` cannot be used (its extra is not installed), or None."""
    module = EXTRAS[extra]
    if importlib.util.find_spec(module) is not None:
        return None
    return (
        f"{setting} needs the {extra!r} extra ({module} is not installed): "
        f"pip install 'meshproxy[{extra}]'"
    )


def needed(settings: Configured) -> list[tuple[str, str]]:
    """(setting, extra) for each configured setting that needs an extra."""
    wanted = []
    if settings.database_url.split(":", 1)[0].lower() in POSTGRES_SCHEMES:
        wanted.append(("database_url", "postgres"))
    if settings.redis_url:
        wanted.append(("redis_url", "redis"))
    if settings.geoip_database is not None:
        wanted.append(("geoip_database", "geoip"))
    return wanted


def problems(settings: Configured) -> list[str]:
    """One line for each configured setting whose extra is missing."""
    found = (missing(extra, setting) for setting, extra in needed(settings))
    return [problem for problem in found if problem is not None]
