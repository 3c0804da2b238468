"""JSON answers whose numbers a person or a spreadsheet can read: every float the API sends
is a GB figure, written in fixed notation (domain.units.json_text: 0.000002432, never
2.432e-06). Still plain JSON numbers: any JSON parser reads them as before."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from meshproxy.domain.units import json_text


class FixedJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json_text(content).encode("utf-8")
