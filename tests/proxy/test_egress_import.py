"""`meshproxy admin egress import`: a provider's host:port:user:pass list becomes egress
entries that, pasted into the proxy's pool, carry requests through those upstreams."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from meshproxy.config import upstream_parts

from .conftest import Env
from .upstreams import UpstreamProcess, egress_env, upstream_proxies

__all__ = ["egress_env", "upstream_proxies"]  # the fixtures, used by name

CONFIG = '''data_dir = "{data}"
[[proxies]]
name = "open"
egress = [{{ upstream = "http://127.0.0.1:3128", name = "taken" }}]
'''


def run_import(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "meshproxy.toml"
    config.write_text(CONFIG.format(data=tmp_path / "data"))
    listed = tmp_path / "list.txt"
    listed.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "egress", "import", "--config",
         str(config), *args, str(listed)],
        capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False,
    )


def pasted(output: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(f"egress = [\n{output}]")["egress"]
    return entries


def test_imported_entries_carry_requests_through_the_provider_proxies(
    tmp_path: Path, egress_env: Callable[..., Env],
    upstream_proxies: Callable[..., UpstreamProcess],
) -> None:
    http = upstream_proxies("http", "127.0.0.51", username="u1", password="p1")
    socks = upstream_proxies("socks5", "127.0.0.53", username="u2", password="p@2:x%")
    http_list = f"# from the provider\n\n127.0.0.1:{http.port}:u1:p1\n"
    socks_list = f"127.0.0.1:{socks.port}:u2:p@2:x%\n"
    first = run_import(tmp_path, http_list, "--proxy", "open", "--name", "us", "--country",
                       "us")
    second = run_import(tmp_path, socks_list, "--proxy", "open", "--scheme", "socks5")
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    entries = pasted(first.stdout) + pasted(second.stdout)
    assert entries[0] == {"upstream": f"http://u1:p1@127.0.0.1:{http.port}", "name": "us-1",
                          "country": "US"}
    parts = upstream_parts(entries[1]["upstream"])
    assert (parts.username, parts.password) == ("u2", "p@2:x%")  # colons and all, decoded
    assert entries[1]["name"] == f"127.0.0.1:{socks.port}"
    env = egress_env(entries)
    peers = set()
    for _ in range(30):
        response = requests.get(env.origins.url("/echo"), proxies={"http": env.proxy_url()},
                                timeout=10)
        assert response.status_code == 200, response.text
        peers.add(response.json()["peer"])
    assert peers == {"127.0.0.51", "127.0.0.53"}


def test_bad_lists_are_refused_naming_the_line(tmp_path: Path) -> None:
    cases = [
        ("198.51.100.7:3128:user\n", "line 1: expected host:port or host:port:user:pass"),
        ("\n198.51.100.7:http\n", "line 2: the upstream's port must be a number"),
        ("198.51.100.7:3128\n198.51.100.7:3128\n", "two egress entries are named"),
        ("127.0.0.1:3128:u:p\n", "127.0.0.1:3128 is in proxy open's pool already (as taken)"),
        ("# nothing\n", "the list holds no proxy lines"),
    ]
    for text, says in cases:
        result = run_import(tmp_path, text, "--proxy", "open")
        assert result.returncode == 1 and says in result.stderr, (text, result.stderr)
    result = run_import(tmp_path, "h:1\n", "--proxy", "nowhere")
    assert "no proxy named nowhere (configured: open)" in result.stderr
    result = run_import(tmp_path, "h:1:" + "u" * 300 + ":p\n", "--proxy", "open",
                        "--scheme", "socks5")
    assert "line 1: SOCKS5 user names and passwords are at most 255 bytes" in result.stderr
    assert "taken" not in run_import(tmp_path, "h:1\n", "--proxy", "open").stdout
