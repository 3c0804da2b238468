"""Printing results: a rich table or key/value panel for people, JSON for scripts (rich is
imported only to print a table)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from meshproxy.domain.units import json_text

if TYPE_CHECKING:
    from rich.console import Console


def emit_json(data: Any) -> None:
    # Floats are GB figures: fixed notation, as the API writes them (never 2.432e-06).
    click.echo(json_text(data, indent=2))


def emit_record(record: Mapping[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit_json(record)
        return
    from rich.table import Table

    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in record.items():
        table.add_row(key, _cell(value))
    _console().print(table)


def emit_rows(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, as_json: bool, title: str = ""
) -> None:
    if as_json:
        emit_json(list(rows))
        return
    from rich.table import Table

    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    _console().print(table)


def _console() -> Console:
    from rich.console import Console

    # Piped output keeps whole cells rather than truncating to 80 columns.
    console = Console()
    return console if console.is_terminal else Console(width=240)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
