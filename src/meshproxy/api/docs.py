"""Interactive API docs: Swagger UI from the swagger-ui-bundle package (no CDN)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs/"
_STATIC = "/api/docs/static"

_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>meshproxy API</title>
<link rel="stylesheet" href="{_STATIC}/swagger-ui.css">
<link rel="icon" type="image/png" href="{_STATIC}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{_STATIC}/swagger-ui-bundle.js"></script>
<script src="{_STATIC}/swagger-ui-standalone-preset.js"></script>
<script src="{DOCS_PATH}init.js"></script>
</body>
</html>
"""

_INIT = f"""window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  }});
}};
"""


async def _page(request: Request) -> Response:
    return HTMLResponse(_PAGE)


async def _init(request: Request) -> Response:
    return Response(_INIT, media_type="text/javascript")


def docs_routes(strip: str = "") -> list[BaseRoute]:
    """The docs' routes, their paths without `strip` (the prefix they are mounted at)."""
    return [
        Route(DOCS_PATH.removeprefix(strip), _page, methods=["GET"]),
        Route(f"{DOCS_PATH}init.js".removeprefix(strip), _init, methods=["GET"]),
        Mount(
            _STATIC.removeprefix(strip),
            app=StaticFiles(directory=str(swagger_ui_path)),
            name="swagger-ui",
        ),
    ]
