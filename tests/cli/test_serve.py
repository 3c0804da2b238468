"""`meshproxy serve` as a newcomer runs it: no config, then the printed curl lines work;
and as an operator meets it: busy ports, a plan gone from the configuration, SIGTERM."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from bench.local import free_port

CREDENTIALS = Path("data") / "first-run-credentials.txt"


def start(
    cwd: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.Popen[str], str]:
    """Start `meshproxy serve` and read its banner; its log goes to cwd/serve.log."""
    with (cwd / "serve.log").open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "meshproxy", "serve", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("Stop with Ctrl-C"):
            break
    return process, "".join(lines)


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=30)


def api_tls(cwd: Path) -> ssl.SSLContext:
    """Trust the API's generated self-signed certificate."""
    return ssl.create_default_context(cafile=str(cwd / "data" / "tls" / "api-cert.pem"))


def log_of(cwd: Path) -> str:
    return (cwd / "serve.log").read_text()


@pytest.fixture
def env() -> dict[str, str]:
    ports = [free_port() for _ in range(5)]
    return {
        **os.environ,
        "MESHPROXY_API__HTTPS_PORT": str(ports[0]),
        "MESHPROXY_API__HTTP_PORT": str(ports[1]),
        "MESHPROXY_ADMIN__PORT": str(ports[4]),
        "MESHPROXY_PROXIES": (
            f'[{{"name": "open", "port": {ports[2]}, "geo": true}},'
            f' {{"name": "world", "port": {ports[3]}, "geo": true}}]'
        ),
    }


def test_first_run_prints_working_credentials_once(tmp_path: Path, env: dict[str, str]) -> None:
    process, banner = start(tmp_path, env)
    try:
        assert "API:        https://127.0.0.1:" in banner
        assert "Dashboard:" in banner and "open.localhost:" in banner
        password = re.search(r"password: (\S+)", banner)
        assert password is not None
        credentials = tmp_path / "data" / "first-run-credentials.txt"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert password.group(1) in credentials.read_text()

        api_curl = next(line for line in banner.splitlines() if "/api/proxies/" in line)
        result = subprocess.run(
            [*shlex.split(api_curl.strip()), "-s", "-w", " %{http_code}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.stdout.endswith(" 200"), result
        assert '"proxies":["open.localhost:' in result.stdout

        # The plain-HTTP port redirects to HTTPS.
        http_port = env["MESHPROXY_API__HTTP_PORT"]
        redirect = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                f"http://127.0.0.1:{http_port}/api/ips/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (
            redirect.stdout == f"302 https://127.0.0.1:{env['MESHPROXY_API__HTTPS_PORT']}/api/ips/"
        )

        # The proxy line authenticates: its credentials pass (the destination policy, not
        # authentication, answers for a loopback target under the default settings).
        proxy_curl = next(line for line in banner.splitlines() if "curl -x" in line)
        proxy_url = shlex.split(proxy_curl.strip())[2]
        through = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-x",
                proxy_url,
                f"http://127.0.0.1:{http_port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert through.stdout == "403"
        # The refusal names the setting that would allow it.
        body = subprocess.run(
            ["curl", "-s", "-x", proxy_url, f"http://127.0.0.1:{http_port}/"],
            capture_output=True, text=True, timeout=30,
        )
        assert "[proxy] allow_destinations" in body.stdout, body.stdout
        # The proxies' advertised names work as given: curl resolves `*.localhost` to the
        # loopback address itself (docs/configuration.md), no hosts-file entry needed.
        host, port = proxy_url.rsplit("@", 1)[1].rsplit(":", 1)
        named = proxy_url.replace(f"@{host}:{port}", f"@open.localhost:{port}")
        by_name = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", named,
             f"http://127.0.0.1:{http_port}/"],
            capture_output=True, text=True, timeout=30,
        )
        assert by_name.stdout == "403", (named, by_name)
    finally:
        assert stop(process) == 0

    # While the credentials file exists, every start shows the block again; once the
    # operator deletes it, no start does.
    again, banner = start(tmp_path, env)
    try:
        assert "created on an earlier start" in banner
        assert f"password: {password.group(1)}" in banner
    finally:
        assert stop(again) == 0
    credentials.unlink()
    third, banner = start(tmp_path, env)
    try:
        assert "First run" not in banner and "password" not in banner
    finally:
        assert stop(third) == 0
    # "Started server process" once per process, not once per API listener.
    starts = re.findall(r"Started server process \[(\d+)\]", log_of(tmp_path))
    assert len(starts) == 3 and len(set(starts)) == 3, starts


def run_serve(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshproxy", "serve", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("MESHPROXY_API__HTTPS_PORT", "api.https_port"),
        ("MESHPROXY_API__HTTP_PORT", "api.http_port"),
        ("proxy open", "proxy 'open'"),
    ],
)
def test_a_busy_port_on_first_start_loses_nothing(
    tmp_path: Path, env: dict[str, str], variable: str, setting: str
) -> None:
    proxies = json.loads(env["MESHPROXY_PROXIES"])
    port = int(env[variable]) if variable in env else proxies[0]["port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run_serve(tmp_path, env)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} ({setting}): Address already in use" in (
        result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was created: the next start is a first start, and its credentials work.
    assert not (tmp_path / "data" / "meshproxy.sqlite3").exists()
    process, banner = start(tmp_path, env)
    try:
        found = re.search(r"username: (\S+)\n\s*password: (\S+)", banner)
        assert found is not None, banner
        assert found.group(2) in (tmp_path / CREDENTIALS).read_text()
        https = env["MESHPROXY_API__HTTPS_PORT"]
        answer = httpx.get(
            f"https://127.0.0.1:{https}/api/proxies/",
            auth=(found.group(1), found.group(2)),
            verify=api_tls(tmp_path),
        )
        assert answer.status_code == 200, answer.text
    finally:
        assert stop(process) == 0


def test_credentials_are_on_disk_before_any_listener(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The parent is created and its file written before the listeners open: a start that
    dies after creating the account (here: a configured TLS certificate that does not
    exist, found only when the API listener starts) leaves the credentials on disk, and the
    next start shows them."""
    broken = {**env, "MESHPROXY_API__TLS_CERT": str(tmp_path / "none.pem"),
              "MESHPROXY_API__TLS_KEY": str(tmp_path / "none.pem")}
    result = run_serve(tmp_path, broken)
    assert result.returncode != 0
    saved = (tmp_path / CREDENTIALS).read_text()
    password = re.search(r"password: (\S+)", saved)
    assert password is not None
    # The README's way to let the proxies reach a local origin (here: the API's plain port).
    local = {**env, "MESHPROXY_PROXY__ALLOW_DESTINATIONS": '["127.0.0.0/8", "::1/128"]'}
    process, banner = start(tmp_path, local)
    try:
        assert "created on an earlier start" in banner
        assert f"password: {password.group(1)}" in banner
        proxy_curl = next(line for line in banner.splitlines() if "curl -x" in line)
        proxy_url = shlex.split(proxy_curl.strip())[2]
        through = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy_url,
             f"http://127.0.0.1:{env['MESHPROXY_API__HTTP_PORT']}/"],
            capture_output=True, text=True, timeout=30,
        )
        assert through.stdout == "302"  # the origin's own answer: allowed through
    finally:
        assert stop(process) == 0


def test_no_first_parent(tmp_path: Path, env: dict[str, str]) -> None:
    process, banner = start(tmp_path, env, "--no-first-parent")
    try:
        assert "is running" in banner and "First run" not in banner
        assert not (tmp_path / CREDENTIALS).exists()
    finally:
        assert stop(process) == 0
    listed = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "list", "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed
    # The setting does the same (MESHPROXY_FIRST_PARENT, or first_parent in the file).
    process, banner = start(tmp_path, {**env, "MESHPROXY_FIRST_PARENT": "false"})
    try:
        assert "First run" not in banner
    finally:
        assert stop(process) == 0


def test_a_parent_on_a_plan_no_longer_configured(tmp_path: Path, env: dict[str, str]) -> None:
    with_gold = {
        **env,
        "MESHPROXY_PLANS": '[{"name": "default", "default_proxies": ["open"]},'
        ' {"name": "gold", "default_proxies": ["open"]}]',
    }
    upgraded = subprocess.run(
        [sys.executable, "-m", "meshproxy", "db", "upgrade"],
        cwd=tmp_path, env=with_gold, capture_output=True, text=True, timeout=60,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    created = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "create", "pm_gold", "--plan", "gold",
         "--password", "gold-pw-123", "--json"],
        cwd=tmp_path, env=with_gold, capture_output=True, text=True, timeout=60,
    )
    assert created.returncode == 0, created.stderr
    process, _banner = start(tmp_path, env, "--no-first-parent")
    try:
        assert "plans the configuration does not declare: 'gold' (1 parents)" in log_of(
            tmp_path
        )
        ready = httpx.get(f"http://127.0.0.1:{env['MESHPROXY_ADMIN__PORT']}/readyz")
        assert ready.status_code == 200  # everyone else is served
        assert ready.json()["unconfigured_plans"] == {"gold": 1}
        assert ready.json()["degraded"] is True
        answer = httpx.post(  # creating a sub-account needs the caller's plan
            f"https://127.0.0.1:{env['MESHPROXY_API__HTTPS_PORT']}/api/sub/create/",
            data={"username": "sub_1", "password": "sub-pw-123"},
            auth=("pm_gold", "gold-pw-123"),
            verify=api_tls(tmp_path),
        )
        assert answer.status_code == 503
        assert "few minutes" not in answer.text and "operator" in answer.text, answer.text
        assert int(answer.headers["Retry-After"]) >= 3600
    finally:
        assert stop(process) == 0


def test_sigterm_with_idle_keep_alive_clients_drains_cleanly(
    tmp_path: Path, env: dict[str, str]
) -> None:
    process, banner = start(tmp_path, env)
    found = re.search(r"username: (\S+)\n\s*password: (\S+)", banner)
    assert found is not None, banner
    context = api_tls(tmp_path)
    idle: list[http.client.HTTPConnection] = []
    try:
        for _ in range(3):  # keep-alive connections, each idle after one answered request
            connection = http.client.HTTPSConnection(
                "127.0.0.1", int(env["MESHPROXY_API__HTTPS_PORT"]), context=context, timeout=10
            )
            connection.request("GET", "/healthz")
            assert connection.getresponse().read()
            idle.append(connection)
        plain = http.client.HTTPConnection(
            "127.0.0.1", int(env["MESHPROXY_API__HTTP_PORT"]), timeout=10
        )
        plain.request("GET", "/api/")
        plain.getresponse().read()
        idle.append(plain)
        started = time.monotonic()
        assert stop(process) == 0
        assert time.monotonic() - started < 5
    finally:
        for opened in idle:
            opened.close()
        if process.poll() is None:
            process.kill()
    log = log_of(tmp_path)
    assert "timeout graceful shutdown exceeded" not in log, log
    assert "Traceback" not in log, log


WORKER = """
from meshproxy.cli.node import Role, run_loop, run_node
from meshproxy.config import load_settings
run_loop(run_node(load_settings(), Role(api=True, proxies=False)))
"""


def test_an_api_worker_starts_while_the_store_is_down(tmp_path: Path, env: dict[str, str]) -> None:
    """A worker the supervisor restarts during a database outage serves (its /readyz says
    the store is down) instead of dying at start and being restarted every second."""
    down = {**env, "MESHPROXY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
            "MESHPROXY_API__TLS": "false", "MESHPROXY_API__REQUIRE_HTTPS": "false"}
    with (tmp_path / "serve.log").open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER], cwd=tmp_path, env=down,
            stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert "is running" in line, log_of(tmp_path)
        ready = httpx.get(f"http://127.0.0.1:{env['MESHPROXY_ADMIN__PORT']}/readyz")
        assert ready.status_code == 503 and ready.json()["backends"]["the store (API)"] == {
            "up": False
        }
    finally:
        assert stop(worker) == 0
