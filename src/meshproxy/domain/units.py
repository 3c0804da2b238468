"""Bandwidth units. 1 GB = 10**9 bytes (design decision: decimal gigabytes).

How a GB figure is written for people and spreadsheets is decided here once: `gb_text`,
fixed notation with 9 decimals (one byte), never an exponent; `json_text` writes JSON with
every float that way (the API's answers, the CLI's --json)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

GB = 10**9
GB_DECIMALS = 9  # one byte


def bytes_to_gb(n: int) -> float:
    """Usage as the API reports it: GB as a float, with 9 decimals (one byte)."""
    return round(n / GB, GB_DECIMALS)


def gb_to_bytes(gb: int) -> int:
    return gb * GB


def gb_text(gb: float) -> str:
    """0.000002432, never 2.432e-06; 1.176023394, never 1.1760233940000002. The client
    writes the same (meshproxy.client.numbers; it imports nothing of the server, and a test
    holds the two equal)."""
    # Adding 0.0 turns the -0.0 that rounding a tiny negative leaves into 0.0.
    return f"{round(gb, GB_DECIMALS) + 0.0:.{GB_DECIMALS}f}"


def json_text(value: Any, indent: int | None = None) -> str:
    """`value` as JSON with every float written by `gb_text` (still a JSON number). Compact
    like Starlette's answers without `indent`; UTF-8 kept; other values as json.dumps."""
    return _json(value, indent, 0)


def _json(value: Any, indent: int | None, depth: int) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return gb_text(value)
    if isinstance(value, Mapping):
        colon = ":" if indent is None else ": "
        items = [f"{_scalar(str(k))}{colon}{_json(v, indent, depth + 1)}" for k, v in value.items()]
        return _container("{", items, "}", indent, depth)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = [_json(item, indent, depth + 1) for item in value]
        return _container("[", items, "]", indent, depth)
    return _scalar(value)


def _container(start: str, items: list[str], end: str, indent: int | None, depth: int) -> str:
    if indent is None or not items:
        return start + ",".join(items) + end
    inner = "\n" + " " * (indent * (depth + 1))
    return start + inner + ("," + inner).join(items) + "\n" + " " * (indent * depth) + end


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
