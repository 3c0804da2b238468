"""CSV text for spreadsheets. A text cell starting with = + - @, tab or carriage return is
run as a formula by spreadsheet programs (OWASP, "CSV Injection"), so such a cell gets a
leading single quote, which they show as text. Numbers are written as they are."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import TypeAlias

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell: TypeAlias = str | int


def safe_cell(cell: Cell) -> Cell:
    """The cell as a spreadsheet will show it, never evaluate it."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """Header and rows as CSV (RFC 4180 line ends), every cell through safe_cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in chain([header], rows):
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
