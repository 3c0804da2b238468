"""psycopg, redis and maxminddb are pip extras: a node that is not configured to use one
runs without it, and a setting whose extra is missing stops the command with a message
naming the setting and the install command. "Missing" is simulated in a real `meshproxy`
process by blocking the module (sys.modules[name] = None, which fails its import)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench.local import free_port

from meshproxy import extras

from .test_imports import stop_once_listening

# Runs the CLI with the modules named in argv[1] (comma-separated) made unimportable.
BLOCKING = """
import sys
for name in filter(None, sys.argv.pop(1).split(",")):
    sys.modules[name] = None
from meshproxy.cli import cli
cli(sys.argv[1:], prog_name="meshproxy")
"""


def meshproxy_without(blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKING, blocked, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_config(tmp_path: Path, *lines: str) -> Path:
    config = tmp_path / "node.toml"
    config.write_text(
        "\n".join([
            f'data_dir = "{tmp_path / "data"}"',
            *lines,
            'plans = [{ name = "default", default_proxies = ["edge"] }]',
            "[[proxies]]",
            'name = "edge"',
            'listen = "127.0.0.1"',
            f"port = {free_port()}",
        ])
        + "\n"
    )
    return config


@pytest.mark.parametrize(
    ("setting", "module", "extra"),
    [
        ('redis_url = "redis://127.0.0.1:9/0"', "redis", "redis"),
        ('database_url = "postgresql://nobody@127.0.0.1:9/none"', "psycopg", "postgres"),
        ('geoip_database = "GEOIP"', "maxminddb", "geoip"),
    ],
)
def test_a_setting_whose_extra_is_missing_is_named_with_the_install_command(
    tmp_path: Path,
    make_geoip_database: Callable[..., Path],
    setting: str,
    module: str,
    extra: str,
) -> None:
    if "GEOIP" in setting:
        setting = setting.replace("GEOIP", str(make_geoip_database({"127.0.0.2/32": "DE"})))
    config = write_config(tmp_path, setting)
    result = meshproxy_without(module, "admin", "plans", "--config", str(config))
    assert result.returncode == 1, result
    name = setting.split(" =")[0]
    assert f"needs the {extra!r} extra ({module} is not installed)" in result.stderr
    assert f"pip install 'meshproxy[{extra}]'" in result.stderr
    assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_a_node_without_those_settings_needs_no_extra(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    node = subprocess.Popen(
        [sys.executable, "-c", BLOCKING, "redis,psycopg,maxminddb", "proxy", "--config",
         str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop_once_listening(node)
    result = meshproxy_without("redis,psycopg,maxminddb", "admin", "list", "--config",
                               str(config))
    assert result.returncode == 0, result


def test_installed_extras_raise_nothing(make_settings: Callable[..., Any]) -> None:
    settings = make_settings(
        redis_url="redis://127.0.0.1:9/0", database_url="postgresql://nobody@127.0.0.1:9/x"
    )
    assert extras.needed(settings) == [("database_url", "postgres"), ("redis_url", "redis")]
    assert extras.problems(settings) == []
