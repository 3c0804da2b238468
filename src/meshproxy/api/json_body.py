"""JSON answers whose numbers a person or a spreadsheet can read: every float the API sends
is a GB figure, written in fixed notation (domain.units.gb_text: 0.000002432, never
2.432e-06). Still plain JSON numbers: any JSON parser reads them as before."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

from meshproxy.domain.units import gb_text


def json_text(value: Any) -> str:
    """`value` as compact JSON (Starlette's separators, UTF-8 kept), floats in fixed notation."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return gb_text(value)
    if isinstance(value, Mapping):
        items = (f"{_scalar(str(key))}:{json_text(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


class FixedJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_text(content).encode("utf-8")
