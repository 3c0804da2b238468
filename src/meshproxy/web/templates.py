"""The Jinja2 environment of the dashboard's pages (package data: web/templates)."""

from __future__ import annotations

from datetime import date, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from meshproxy.web.units import exact_gb, human_bytes, limit_text, used_percent


def _day(value: date | datetime) -> str:
    return value.strftime("%Y-%m-%d")


def make_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("meshproxy.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(bytes=human_bytes, exact_gb=exact_gb, limit=limit_text, day=_day)
    env.globals.update(used_percent=used_percent)
    return env
