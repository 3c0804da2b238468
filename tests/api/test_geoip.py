"""/api/geoips/<name>/ when egress countries come from a GeoIP database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .harness import StartServer, fresh_source


def test_geoips_counts_the_database_countries_and_configured_ones_win(
    start_server: StartServer, make_geoip_database: Callable[[dict[str, str]], Path]
) -> None:
    database = make_geoip_database(
        {"127.0.0.2/31": "DE", "127.0.0.4/31": "JP", "127.0.1.0/24": "GB"}
    )
    api = start_server(
        geoip_database=str(database),
        proxies=[
            {
                "name": "open",
                "geo": True,
                "egress": [
                    {"address": "127.0.0.2"},
                    {"address": "127.0.0.3"},
                    {"address": "127.0.0.4"},
                    {"address": "127.0.0.5", "country": "US"},  # the database says JP
                    {"address": "127.0.0.9"},  # in no country
                    {},  # the host's default address: not looked up
                ],
            },
            {"name": "world", "port": 31281, "geo": True, "egress": [{"address": "127.0.1.7"}]},
        ],
    )
    client = api.parent().client(source=fresh_source())
    assert client.get("/api/geoips/open/").json() == {"DE": 2, "JP": 1, "US": 1}
    assert client.get("/api/geoips/world/").json() == {"GB": 1}
