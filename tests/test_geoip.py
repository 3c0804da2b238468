"""geoip_database: egress countries tagged at start from a MaxMind-format database."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from meshproxy.config import ConfigError, Settings, load_settings

MakeDatabase = Callable[[dict[str, str]], Path]
DATABASE = {"127.0.0.2/31": "DE", "127.0.0.4/31": "jp"}
POOL = """
[[plans]]
name = "default"
default_proxies = ["open"]
[[proxies]]
name = "open"
geo = true
egress = [
  {address = "127.0.0.2"},
  {address = "127.0.0.3", country = "FR"},
  {address = "127.0.0.4"},
  {address = "127.0.0.9"},
  {address = "::1"},
  {},
]
"""


def with_pool(egress: list[dict[str, str]], **overrides: str) -> Settings:
    return load_settings(
        None,
        plans=[{"name": "default"}],
        proxies=[{"name": "open", "geo": True, "egress": egress}],
        **overrides,
    )


def countries(settings: Settings) -> list[tuple[str | None, str | None]]:
    return [(e.address, e.country) for p in settings.proxies for e in p.egress]


def test_untagged_egress_addresses_get_the_database_country(
    tmp_path: Path, make_geoip_database: MakeDatabase
) -> None:
    config = tmp_path / "meshproxy.toml"
    config.write_text(f"geoip_database = '{make_geoip_database(DATABASE)}'\n{POOL}")
    assert countries(load_settings(config)) == [
        ("127.0.0.2", "DE"),
        ("127.0.0.3", "FR"),  # configured: wins over the database's DE
        ("127.0.0.4", "JP"),
        ("127.0.0.9", None),
        ("::1", None),
        (None, None),
    ]


def test_without_a_database_nothing_is_tagged(tmp_path: Path) -> None:
    config = tmp_path / "meshproxy.toml"
    config.write_text(POOL)
    assert [c for _, c in countries(load_settings(config))] == [None, "FR", None, None, None, None]


def test_the_environment_names_the_database(
    make_geoip_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHPROXY_GEOIP_DATABASE", str(make_geoip_database(DATABASE)))
    assert countries(with_pool([{"address": "127.0.0.5"}])) == [("127.0.0.5", "JP")]


def test_an_ipv4_only_database_leaves_ipv6_egress_untagged(tmp_path: Path) -> None:
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-Country")
    writer.insert_network(IPSet(["127.0.0.0/8"]), {"country": {"iso_code": "DE"}})
    writer.to_db_file(str(tmp_path / "v4.mmdb"))
    settings = with_pool(
        [{"address": "127.0.0.2"}, {"address": "::1"}], geoip_database=str(tmp_path / "v4.mmdb")
    )
    assert countries(settings) == [("127.0.0.2", "DE"), ("::1", None)]


def test_an_unusable_database_is_a_start_up_error_naming_the_file(
    tmp_path: Path, make_geoip_database: MakeDatabase
) -> None:
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(b"\x00not a maxmind database\xff" * 100)
    cases = [
        (tmp_path / "absent.mmdb", "No such file or directory"),
        (corrupt, "not a MaxMind DB file"),
        (tmp_path, "not a MaxMind DB file"),  # a directory
        (make_geoip_database({"127.0.0.0/8": "XYZ"}), "not a two-letter ISO 3166 code"),
    ]
    for path, reason in cases:
        with pytest.raises(ConfigError) as info:
            with_pool([{"address": "127.0.0.2"}], geoip_database=str(path))
        message = str(info.value)
        assert message.startswith("geoip_database: ") and str(path) in message
        assert reason in message


def test_serve_with_an_unusable_database_exits_1_with_the_message(tmp_path: Path) -> None:
    corrupt = tmp_path / "GeoLite2-Country.mmdb"
    corrupt.write_bytes(b"garbage" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "meshproxy", "serve"],
        cwd=tmp_path,
        env={**os.environ, "MESHPROXY_GEOIP_DATABASE": str(corrupt)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: geoip_database: cannot read the GeoIP database {corrupt}: "
        "not a MaxMind DB file"
    )
    assert not (tmp_path / "data").exists()  # stopped before anything was created
