"""Alembic, driven from code: `upgrade(url)` runs at start and from `meshproxy db upgrade`.

A database already at the head revision is recognised without Alembic (the head is read
from the versions folder, the current revision from the alembic_version table): nodes and
admin commands, which start against a migrated database nearly always, import Alembic
(about 50 ms and several MiB) only when there is something to migrate.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# `revision = "0004"`, also annotated (`down_revision: str | None = None`), as templates write
_REVISION = re.compile(
    r"""^(down_revision|revision)\s*(?::[^=\n]+)?=\s*(?:["']([^"']+)["']|None)\s*$""", re.M
)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and (head := head_revision()) and current_revision(engine) == head:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


@cache
def head_revision() -> str | None:
    """The one revision no other revises, read from the versions folder; None when the
    folder does not name exactly one (branches, or a file this reader cannot parse): then
    Alembic decides."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found: dict[str, str | None] = {
            match[1]: match[2] for match in _REVISION.finditer(path.read_text())
        }
        revision, down = found.get("revision"), found.get("down_revision")
        if revision is None:
            return None
        revisions.add(revision)
        if down is not None:
            revised.add(down)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: not migrated yet), read with plain SQL."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):  # Alembic's default name
            return None
        rows = connection.execute(text("SELECT version_num FROM alembic_version"))
        versions = list(rows.scalars())
    return versions[0] if len(versions) == 1 else None
