"""`meshproxy serve` as a newcomer runs it: no config, then the printed curl lines work."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.local import free_port


def start(cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "meshproxy", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
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


@pytest.fixture
def env() -> dict[str, str]:
    ports = [free_port() for _ in range(4)]
    return {
        **os.environ,
        "MESHPROXY_API__HTTPS_PORT": str(ports[0]),
        "MESHPROXY_API__HTTP_PORT": str(ports[1]),
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

    again, banner = start(tmp_path, env)
    try:
        assert "First run" not in banner and "password" not in banner
    finally:
        assert stop(again) == 0


def test_busy_port_is_a_clear_error(tmp_path: Path, env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(env["MESHPROXY_API__HTTPS_PORT"])))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "meshproxy", "serve"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr
