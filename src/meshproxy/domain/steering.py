"""The rules of steering options shared by the proxies and the dashboard (design.md,
"Beyond the ProxyMesh API"): sticky session ids and times, country codes, and the
username that carries options (`USER-country-us-session-abc123-sesstime-30`)."""

from __future__ import annotations

import re

SESSION_ID = re.compile(r"[A-Za-z0-9._~]{1,64}")  # a sticky session's id
MAX_SESSION_MINUTES = 1440
DEFAULT_SESSION_MINUTES = 10


def session_minutes(value: str) -> int | None:
    """A session time in minutes, or None when not one (1-1440)."""
    if not value.isascii() or not value.isdigit() or len(value) > 4:
        return None
    minutes = int(value)
    return minutes if 1 <= minutes <= MAX_SESSION_MINUTES else None


def is_country_code(value: str) -> bool:
    return len(value) == 2 and value.isascii() and value.isalpha()


def username_with_options(
    username: str, *, country: str = "", session: str = "", minutes: str = ""
) -> str | None:
    """`username` with these options appended (empty ones left out); None when one is
    not valid."""
    parts = [username]
    if country:
        if not is_country_code(country):
            return None
        parts += ("country", country.lower())
    if session:
        if SESSION_ID.fullmatch(session) is None:
            return None
        parts += ("session", session)
    if minutes:
        if session_minutes(minutes) is None:
            return None
        parts += ("sesstime", minutes)
    return "-".join(parts)
