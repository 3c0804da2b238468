"""Secrets: the ban shared both ways between a real API server and a real ProxyNode on one
SQLite store; no password or Basic token in logs, error bodies or headers (API, dashboard,
proxy, at DEBUG); argon2id with production parameters from the admin CLI; and every
comparison of a secret in the source made in constant time."""

from __future__ import annotations

import ast
import base64
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import argon2
import pytest

from api.harness import Clock, Running, StartServer
from meshproxy.store import Store
from support.polling import eventually

from .conftest import Env
from .dashboard import Dash
from .raw import basic_raw, exchange, fresh_source

SRC = Path(__file__).resolve().parents[2] / "src" / "meshproxy"
SECRET_NAME = re.compile(r"csrf|token|digest|signature|secret|password|(^|_)key$", re.I)
# Comparisons of secret-looking names that compare no secret (each says why).
NOT_SECRETS = {
    ("web/pages/subaccounts.py", "key == sort"): "a sort column's name",
    ("proxy/core/request.py", "tokens != [b'chunked']"): "Transfer-Encoding tokens",
    ("proxy/core/handshake.py", "method == USER_PASSWORD"): "a SOCKS5 method number",
    ("proxy/server/dial.py", "other.key == choice.key"): "an egress's pool key",
}
# Comparisons of two stored hashes: is the hash verified the one still stored (no input).
STORED_HASHES = re.compile(r"^\w+\.password_hash == \w+(\.password_hash)?$")


class RealClock(Clock):
    """The API's clock on real time, as the proxy's (bans are absolute times)."""

    def __call__(self) -> float:
        return time.time()


def _names(node: ast.AST) -> list[str]:
    return [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(node)
            if isinstance(n, ast.Name | ast.Attribute)]


def test_secrets_are_compared_in_constant_time() -> None:
    """No `==`/`!=` between values named like secrets (csrf, token, digest, signature,
    secret, password, key) outside a reviewed list; hmac.compare_digest is used instead
    (argon2's verify for passwords)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Compare):
                continue
            if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Constant | ast.Compare) for side in sides):
                continue  # against None or a literal, or of two booleans: no secret
            if not any(SECRET_NAME.search(name) for side in sides for name in _names(side)):
                continue
            text = ast.unparse(node)
            if (relative, text) in NOT_SECRETS or STORED_HASHES.match(text):
                continue
            found.append(f"{relative}:{node.lineno}: {text}")
    assert found == []
    sessions = (SRC / "web" / "sessions.py").read_text()
    assert "compare_digest" in sessions  # the CSRF token and the password fingerprint


# ---- the ban, shared both ways ----------------------------------------------------------


@pytest.fixture
def both(start_server: StartServer, start_env: Callable[..., Env], store: Store
         ) -> tuple[Env, Running]:
    """A ProxyNode and an API server on one store; account alice (pw) on both."""
    env = start_env()
    env.account("alice")
    env.sync()
    api = start_server(store=store, clock=RealClock())
    return env, api


def _proxy_get(env: Env, source: str, credentials: bytes) -> int | None:
    request = (b"GET " + env.origins.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
               b"Proxy-Authorization: " + basic_raw(credentials) + b"\r\n\r\n")
    return exchange(env.address(), request, source=source).status


def test_a_ban_earned_on_the_api_refuses_the_proxy(both: tuple[Env, Running]) -> None:
    env, api = both
    source = fresh_source()
    assert _proxy_get(env, source, b"alice:pw") == 200
    stranger = api.client(auth=("alice", "wrong"), source=source)
    for _ in range(4):
        assert stranger.get("/api/ips/").status_code == 401
    started = time.monotonic()
    assert eventually(lambda: _proxy_get(env, source, b"alice:pw") == 407, 1.0)
    assert time.monotonic() - started < 1.5
    assert _proxy_get(env, fresh_source(), b"alice:pw") == 200  # only that address


def test_a_ban_earned_on_the_proxy_refuses_the_api(both: tuple[Env, Running]) -> None:
    env, api = both
    source = fresh_source()
    client = api.client(auth=("alice", "pw"), source=source)
    assert client.get("/api/ips/").status_code == 200
    for _ in range(4):
        assert _proxy_get(env, source, b"alice:wrong") == 407
    assert _proxy_get(env, source, b"alice:pw") == 407  # banned on the proxy at once
    started = time.monotonic()
    assert eventually(lambda: client.get("/api/ips/").status_code == 401, 1.0)
    assert time.monotonic() - started < 1.5
    assert "banned" in client.get("/api/ips/").json()["error"]


# ---- no credentials in logs or answers ----------------------------------------------------

PASSWORD = "Zx9-secret-never-logged"


def _leaks(password: str, username: str) -> list[str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [password, token, token.rstrip("=")]


def test_no_credentials_in_logs_or_answers(
    both: tuple[Env, Running], dash: Dash, caplog: pytest.LogCaptureFixture
) -> None:
    env, api = both
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for username in ("alice", "nobody"):
        client = api.client(auth=(username, PASSWORD), source=fresh_source())
        for _ in range(5):  # through the ban
            response = client.get("/api/ips/")
            assert response.status_code == 401
            seen.append(str(response.headers) + response.text)
        request = (b"GET " + env.origins.url("/echo").encode() + b" HTTP/1.1\r\nHost: x\r\n"
                   b"Proxy-Authorization: " + basic_raw(f"{username}:{PASSWORD}".encode())
                   + b"\r\n\r\n")
        source = fresh_source()
        for _ in range(5):
            outcome = exchange(env.address(), request, source=source)
            assert outcome.status == 407
            seen.append((outcome.head + outcome.body).decode("latin-1"))
        browser = dash.browser()
        for _ in range(5):
            browser.get("/dashboard/login/")
            page = browser.post("/dashboard/login/", {"username": username,
                                                      "password": PASSWORD})
            assert page.status_code in (400, 403)
            seen.append(str(page.headers) + page.text)
    env.flush()
    records = caplog.text + "".join(r.getMessage() for r in caplog.records)
    for leak in _leaks(PASSWORD, "alice") + _leaks(PASSWORD, "nobody"):
        assert leak not in records
        for answer in seen:
            assert leak not in answer


# ---- argon2id with production parameters --------------------------------------------------


def test_the_admin_cli_hashes_with_argon2id_production_parameters(tmp_path: Path) -> None:
    environment = {**os.environ, "MESHPROXY_DATA_DIR": str(tmp_path)}
    environment.pop("MESHPROXY_CONFIG", None)
    Store.open(f"sqlite:///{tmp_path / 'meshproxy.sqlite3'}").close()  # admin creates none
    done = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "create", "pm_hashed", "--password",
         PASSWORD], env=environment, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr  # (it prints the credentials: the operator's)
    store = Store.open(f"sqlite:///{tmp_path / 'meshproxy.sqlite3'}")
    try:
        account = store.accounts.get("pm_hashed")
    finally:
        store.close()
    assert account is not None and account.password_hash is not None
    stored = account.password_hash
    assert stored.startswith("$argon2id$")
    parameters = argon2.extract_parameters(stored)
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 19_456 and parameters.time_cost >= 2
    assert PASSWORD not in stored
    assert argon2.PasswordHasher().verify(stored, PASSWORD)
