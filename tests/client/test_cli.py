"""`meshproxy api ...` driven as a reseller would: a subprocess against the running API,
exit codes checked, --json parsed."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import PASSWORD, LiveApi, unique, unique_ip

Run = Any


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """No MESHPROXY_API_* from the developer's shell; no ~/.config file of theirs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHPROXY_API")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["COLUMNS"] = "200"
    return env


def runner(env: dict[str, str]) -> Run:
    def meshproxy(*args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshproxy", "api", *args],
            capture_output=True, text=True, env=env, input=input_text, timeout=60,
        )

    return meshproxy


@pytest.fixture
def run(environment: dict[str, str], live_api: LiveApi, parent: str) -> Run:
    """The CLI with the parent's credentials in the environment."""
    return runner({
        **environment,
        "MESHPROXY_API_URL": live_api.url,
        "MESHPROXY_API_USER": parent,
        "MESHPROXY_API_PASSWORD": PASSWORD,
        "MESHPROXY_API_CA_FILE": str(live_api.cert),
    })


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_sub_account_commands(run: Run) -> None:
    name = unique("pm_alice")
    created = as_json(run("sub", "create", name, "--monthly-limit", "5", "--email", "a@x.io",
                          "--password", "alice-pass", "--json"))
    assert created == {
        "username": name, "active": True, "monthly_bandwidth": 0.0,
        "monthly_bandwidth_limit": 5, "total_bandwidth": 0.0, "total_bandwidth_limit": 0,
        "email": "a@x.io",
    }
    edited = as_json(run("sub", "edit", name, "--total-limit", "40", "--email", "", "--json"))
    assert edited["total_bandwidth_limit"] == 40 and "email" not in edited
    assert as_json(run("sub", "deactivate", name, "--json"))["active"] is False
    assert as_json(run("sub", "activate", name, "--json"))["active"] is True
    assert as_json(run("sub", "get", name, "--json")) == {**edited, "active": True}

    table = run("sub", "get", name)
    assert table.returncode == 0 and name in table.stdout
    assert "monthly_bandwidth_limit" in table.stdout

    listed = as_json(run("sub", "list", "--json"))
    assert [row["username"] for row in listed] == [name]
    assert as_json(run("sub", "list", "--offset", "1", "--json")) == []

    declined = run("sub", "delete", name, input_text="n\n")
    assert declined.returncode == 1
    assert as_json(run("sub", "delete", name, "--yes", "--json")) == {
        "username": name, "deleted": True,
    }
    missing = run("sub", "get", name)
    assert missing.returncode == 3 and "404" in missing.stderr


def test_ip_hostname_proxy_and_geo_commands(run: Run) -> None:
    sub = as_json(run("sub", "create", unique("pm_bob"), "--json"))["username"]
    ip = unique_ip()
    assert as_json(run("ips", "add", ip, "--username", sub, "--json")) == {"ip": ip}
    assert as_json(run("ip", "list", "--username", sub, "--json")) == {"ips": [ip]}
    assert as_json(run("ips", "list", "--json")) == {"ips": []}
    assert run("ips", "delete", ip, "--username", sub).returncode == 0

    domain = f"{unique('gw')}.example.org"
    assert as_json(run("hostnames", "add", domain, "--json")) == {"domain": domain}
    assert domain in run("hostname", "list").stdout
    assert as_json(run("hostnames", "delete", domain, "--json"))["deleted"] is True

    assert as_json(run("proxy", "add", "plain", "--json")) == {"proxy": "plain.proxymesh.test"}
    assert "plain.proxymesh.test:31282" in as_json(run("proxies", "list", "--json"))["proxies"]
    assert run("proxies", "delete", "plain").returncode == 0

    assert as_json(run("geoips", "open", "--json")) == {"US": 2, "DE": 1}
    assert "DE" in run("geoips", "open").stdout
    assert as_json(run("request", "GET", "/api/ips/", "-f", f"username={sub}")) == {"ips": []}


def test_exit_codes(run: Run, environment: dict[str, str], unused_port: int) -> None:
    invalid = run("sub", "create", "not valid!", "--json")
    assert invalid.returncode == 3
    assert "username:" in invalid.stderr and invalid.stdout == ""

    assert run("sub", "create", "pm_x", "--monthly-limit", "-1").returncode == 2  # usage
    assert run("sub", "frobnicate").returncode == 2
    assert run("request", "GET", "/api/sub/create/").returncode == 3  # 405

    nobody = runner(environment)("sub", "get", "pm_x")
    assert nobody.returncode == 2 and "MESHPROXY_API_URL" in nobody.stderr

    offline = run("--api-url", f"https://127.0.0.1:{unused_port}", "--retries", "0", "proxies",
                  "list")
    assert offline.returncode == 4 and "ConnectError" in offline.stderr

    wrong = run("--api-password", "not it", "proxies", "list")
    assert wrong.returncode == 3 and "401" in wrong.stderr


def test_tls_options(
    environment: dict[str, str], live_api: LiveApi, parent: str, unused_port: int
) -> None:
    run = runner({**environment, "MESHPROXY_API_USER": parent, "MESHPROXY_API_PASSWORD": PASSWORD,
                  "MESHPROXY_API_URL": live_api.url})
    untrusted = run("--retries", "0", "ips", "list")
    assert untrusted.returncode == 4 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert "--ca-file data/tls/api-cert.pem" in untrusted.stderr  # what to do about it
    refused = run("--api-url", f"https://127.0.0.1:{unused_port}", "--retries", "0", "ips", "list")
    assert refused.returncode == 4 and "--ca-file" not in refused.stderr  # not a TLS matter
    assert as_json(run("--insecure", "ips", "list", "--json")) == {"ips": []}
    assert as_json(run("--ca-file", str(live_api.cert), "ips", "list", "--json")) == {"ips": []}


def test_config_file(environment: dict[str, str], live_api: LiveApi, parent: str) -> None:
    directory = Path(environment["XDG_CONFIG_HOME"]) / "meshproxy"
    directory.mkdir(parents=True)
    (directory / "api-cert.pem").write_bytes(live_api.cert.read_bytes())
    config = directory / "client.toml"
    config.write_text(
        f'url = "{live_api.url}"\nuser = "{parent}"\npassword = "{PASSWORD}"\n'
        'ca_file = "api-cert.pem"\ntimeout = 10\n'
    )
    config.chmod(0o600)
    run = runner(environment)
    result = run("ips", "list", "--json")  # the default path, under XDG_CONFIG_HOME
    assert as_json(result) == {"ips": []} and result.stderr == ""

    config.chmod(0o644)
    assert "chmod 600" in run("ips", "list").stderr

    other = directory / "other.toml"
    other.write_text('url = "https://x"\ncolour = "blue"\n')
    bad = run("--client-config", str(other), "ips", "list")
    assert bad.returncode == 2 and "colour" in bad.stderr
    assert run("--client-config", str(directory / "absent.toml"), "ips", "list").returncode == 2

    # The environment wins over the file.
    env_run = runner({**environment, "MESHPROXY_API_PASSWORD": "wrong"})
    assert env_run("ips", "list").returncode == 3


def test_usage_report(run: Run, live_api: LiveApi, tmp_path: Path) -> None:
    names = [unique(f"pm_{letter}") for letter in "abc"]
    for name, limit in zip(names, ["10", "0", "2"], strict=True):
        run("sub", "create", name, "--monthly-limit", limit)
    live_api.use(names[0], 4.0)
    live_api.use(names[2], 2.5)

    rows = as_json(run("usage-report", "--json"))  # biggest monthly usage first
    assert [row["username"] for row in rows] == [names[0], names[2], names[1]]
    assert rows[0]["monthly_gb"] == pytest.approx(4.0) and rows[0]["monthly_limit_gb"] == 10
    assert rows[1]["monthly_percent"] == 125.0 and rows[1]["over_limit"] is True
    assert rows[2]["monthly_percent"] is None and rows[2]["total_gb"] == 0.0

    by_percent = as_json(run("usage-report", "--sort", "monthly-percent", "--json"))
    assert [row["username"] for row in by_percent] == [names[2], names[0], names[1]]

    by_name = run("usage-report", "--format", "csv", "--sort", "username")
    parsed = list(csv.DictReader(io.StringIO(by_name.stdout)))
    assert [row["username"] for row in parsed] == names
    assert parsed[0]["monthly_percent"] == "40.0" and parsed[1]["monthly_percent"] == ""

    table = run("usage-report")
    assert table.returncode == 0 and "OVER" in table.stdout and "3 sub-accounts" in table.stdout
    # GB as the API writes them (fixed, 9 decimals), in the rows and the sums.
    assert "4.000000000" in table.stdout and "6.500000000 GB this period" in table.stdout


def test_usage_report_without_the_list_extension(
    run: Run, live_api: LiveApi, tmp_path: Path
) -> None:
    names = [unique("pm_legacy") for _ in range(3)]
    for name in names:
        run("sub", "create", name)
    live_api.use(names[1], 1.0)
    legacy = ("--api-url", live_api.url_without_list)

    refused = run(*legacy, "usage-report")
    assert refused.returncode == 2 and "--usernames-file" in refused.stderr

    listing = tmp_path / "customers.txt"
    listing.write_text(f"# our customers\n{names[0]}\n{names[2]}  # moved\n\n")
    rows = as_json(run(*legacy, "usage-report", names[1], "--usernames-file", str(listing),
                       "--json"))
    assert [row["username"] for row in rows] == [names[1], names[0], names[2]]

    partial = run(*legacy, "usage-report", names[0], "pm_unknown_someone", "--json")
    assert partial.returncode == 3 and "pm_unknown_someone" in partial.stderr
    assert [row["username"] for row in json.loads(partial.stdout)] == [names[0]]
