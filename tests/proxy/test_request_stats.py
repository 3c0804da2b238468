"""Request statistics from outside: requests of every outcome through a real node, then the
figures the API (GET /api/sub/stats/) and the dashboard's CSV give, compared with what was
sent and with the usage the meter charged."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import requests
from starlette.testclient import TestClient

from meshproxy.client import Client
from meshproxy.domain import stats
from proxy.clients import basic, connect, curl
from proxy.conftest import Env
from support.polling import wait_until
from web.helpers import Browser, Clock, make_app

from .api_face import api_base, api_client  # noqa: F401 (a fixture)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _when_counted(env: Env, username: str, count: int) -> None:
    """Wait for the node to count the account's requests (each is counted when it ends,
    which may come just after its client has the response)."""
    account = env.store.accounts.get(username)
    assert account is not None
    today = datetime.now(UTC).date()
    found: list[stats.DayStats] = []

    def counted() -> bool:
        nonlocal found
        env.flush()
        found = env.store.stats.daily(account.id, today, today + timedelta(days=1))
        return bool(found) and found[0].get(stats.REQUESTS) >= count

    wait_until(counted, 10, lambda: f"requests of {username} not counted: {found}", 0.05)


def test_every_outcome_counted_and_the_api_and_csv_agree(
    env: Env, api_base: str  # noqa: F811
) -> None:
    alice = env.store.accounts.get("alice")
    assert alice is not None
    env.account("bob", parent=alice)
    env.sync()
    proxies = {"http": env.proxy_url(), "https": env.proxy_url()}
    origin = env.origins.url

    assert requests.get(origin("/bytes/5000"), proxies=proxies, timeout=10).status_code == 200
    for code in (301, 404, 503):
        assert requests.get(
            origin(f"/status/{code}"), proxies=proxies, timeout=10, allow_redirects=False
        ).status_code == code
    assert curl("-x", env.proxy_url(), "http://10.255.255.1:8080/").returncode == 0  # 403
    closed = f"http://127.0.0.1:{_closed_port()}/"
    assert requests.get(closed, proxies=proxies, timeout=10).status_code == 502
    tunnel = curl(
        "-x", env.proxy_url(), "--cacert", str(env.origins.ca_file), "-o", "/dev/null",
        "-w", "%{http_code}", f"https://127.0.0.1:{env.origins.https}/bytes/20000",
    )
    assert tunnel.stdout == b"200", tunnel.stderr
    with connect(env.address()) as sock:  # resets before the slow origin answers: aborted
        sock.sendall(
            (f"GET {origin('/slow/5')} HTTP/1.1\r\nHost: x\r\n"
             f"Proxy-Authorization: {basic()}\r\n\r\n").encode()
        )
        time.sleep(0.3)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    wrong = requests.get(
        origin("/echo"), proxies={"http": env.proxy_url(password="wrong")}, timeout=10
    )
    assert wrong.status_code == 407  # no account: in nobody's figures
    for _ in range(2):
        assert requests.get(
            origin("/echo"), proxies={"http": env.proxy_url(user="bob")}, timeout=10
        ).status_code == 200
    _when_counted(env, "alice", 8)
    _when_counted(env, "bob", 2)

    client = api_client(api_base, "alice", "pw")
    answer = client.get("/api/sub/stats/", params={"days": "3"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["username"] == "alice" and len(body["days"]) == 3
    assert [d["requests"] for d in body["days"][:2]] == [0, 0]  # every day, zeros included
    today = body["days"][-1]
    assert today["day"] == datetime.now(UTC).date().isoformat()
    assert {name: today[name] for name in stats.COUNTERS if name != stats.BYTES} == {
        "requests": 8, "origin_2xx": 1, "origin_3xx": 1, "origin_4xx": 1, "origin_5xx": 1,
        "proxy_4xx": 1, "proxy_5xx": 1, "tunnels": 1, "aborted": 1,
    }
    bob = client.get("/api/sub/stats/", params={"username": "bob", "days": "1"}).json()
    (bob_today,) = bob["days"]
    assert bob_today["requests"] == 2 and bob_today["origin_2xx"] == 2
    # Bytes: each request's as charged, so alice's and bob's add up to alice's usage (a
    # parent's usage includes its sub-accounts').
    monthly, _ = env.usage("alice")
    assert today["bytes"] + bob_today["bytes"] == monthly
    hosts = {h["host"]: h["bytes"] for h in today["hosts"]}
    assert set(hosts) == {"127.0.0.1", "10.255.255.1"}
    assert sum(hosts.values()) == today["bytes"] and hosts["127.0.0.1"] > 25000
    assert [h["host"] for h in bob_today["hosts"]] == ["127.0.0.1"]

    # The API client and `meshproxy client sub stats` read the same figures.
    with Client(api_base, "alice", "pw") as typed:
        assert [day.to_json() for day in typed.account_stats(days=3)] == body["days"]
        assert [day.to_json() for day in typed.account_stats("bob", days=1)] == bob["days"]
    command = subprocess.run(
        [sys.executable, "-m", "meshproxy", "client", "sub", "stats", "bob", "--days", "1",
         "--json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "MESHPROXY_API_URL": api_base, "MESHPROXY_API_USER": "alice",
             "MESHPROXY_API_PASSWORD": "pw"},
    )
    assert command.returncode == 0, command.stderr
    assert json.loads(command.stdout) == bob["days"]

    assert client.get("/api/sub/stats/", params={"days": "0"}).status_code == 400
    assert client.get("/api/sub/stats/", params={"username": "nobody"}).status_code == 404
    assert api_client(api_base, "bob", "pw").get("/api/sub/stats/").status_code == 403

    # The dashboard: the CSV of the current period, and the sub-account's page.
    now = Clock(datetime.now(UTC))
    with TestClient(make_app(env.node.settings, env.store, now), follow_redirects=False) as app:
        browser = Browser(app)
        browser.login("alice", "pw")
        exported = browser.get("/dashboard/export/requests.csv?period=current")
        assert exported.status_code == 200, exported.text
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [(r["username"], r["date"]) for r in rows] == [
            ("alice", today["day"]), ("bob", today["day"])
        ]
        for row, figures in zip(rows, (today, bob_today), strict=True):
            assert {name: int(row[name]) for name in stats.COUNTERS} == {
                name: figures[name] for name in stats.COUNTERS
            }
            assert row["top_hosts"] == " ".join(
                f"{h['host']}={h['bytes']}" for h in figures["hosts"]
            )
        page = browser.get("/dashboard/sub-accounts/bob/")
        assert page.status_code == 200
        assert "Requests by outcome, last 30 days" in page.text and "127.0.0.1" in page.text
        home = browser.get("/dashboard/")
        assert "Requests by outcome" in home.text and "10.255.255.1" in home.text
