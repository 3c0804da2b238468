"""The dashboard: the web pages where parent and sub-accounts log in, see their usage and
do by hand what the API does (through the same `control` operations)."""

from meshproxy.web.routes import dashboard_routes

__all__ = ["dashboard_routes"]
