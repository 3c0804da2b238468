"""Upstream egress health where the operator and the customer see it: the node's
/metrics (meshproxy_egress_*), `meshproxy admin proxies` and the dashboard's proxies
page, with one live tinyproxy and one upstream that refuses every connection."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from starlette.testclient import TestClient

from meshproxy.control.egress_health import parse_metrics, read_egress_health
from meshproxy.ops.admin import AdminServer
from meshproxy.ops.status import NodeStatus
from meshproxy.proxy.core.egress import Egress
from meshproxy.proxy.core.health import EgressHealth
from support.polling import wait_until
from web.helpers import PARENT_PASSWORD, Browser, Clock, make_app, make_parent

from .conftest import Env
from .upstreams import UpstreamProcess, egress_env, free_port, upstream_proxies

__all__ = ["egress_env", "upstream_proxies"]  # the fixtures, used by name


@pytest.fixture
def watched(
    egress_env: Callable[..., Env], upstream_proxies: Callable[..., UpstreamProcess]
) -> Iterator[tuple[Env, int, list[dict[str, str]]]]:
    """A node with a live upstream and a dead one (probed every 0.1 s: out at once), and
    its admin listener: (env, admin port, the egress entries)."""
    live = upstream_proxies("http", "127.0.0.51")
    egress = [{"upstream": live.url(), "name": "live"},
              {"upstream": f"socks5://127.0.0.1:{free_port()}", "name": "dead"}]
    env = egress_env(egress, egress_max_failures=1, health_check_interval=0.1)
    status = NodeStatus(store=env.store, api=False, proxy_node=env.node)

    async def start() -> AdminServer:
        server = AdminServer(status, "127.0.0.1", 0)
        await server.start()
        return server

    server = env.thread.run(start())
    health = env.node.egress_health
    wait_until(lambda: not health()["open"]["dead"].up
               and health()["open"]["live"].latency is not None, 5, health, interval=0.05)
    yield env, server.port, egress
    env.thread.run(server.stop())


def test_metrics_say_which_upstream_is_up(watched: tuple[Env, int, list[dict[str, str]]]) -> None:
    _, port, _ = watched
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'meshproxy_egress_up{egress="live",proxy="open"} 1.0' in text
    assert 'meshproxy_egress_up{egress="dead",proxy="open"} 0.0' in text
    report = parse_metrics(text)["open"]
    assert report["live"].up and report["live"].latency is not None
    assert not report["dead"].up and report["dead"].failures >= 1
    assert "dead" in report and 'meshproxy_egress_latency_seconds{egress="dead"' not in text


def test_admin_proxies_and_the_dashboard_show_the_health(
    watched: tuple[Env, int, list[dict[str, str]]], tmp_path: Path,
) -> None:
    env, port, egress = watched
    config = tmp_path / "meshproxy.toml"
    entries = ", ".join("{ " + ", ".join(f'{k} = "{v}"' for k, v in e.items()) + " }"
                        for e in egress)
    config.write_text(f'data_dir = "{tmp_path / "cli"}"\n[admin]\nport = {port}\n'
                      f'[[proxies]]\nname = "open"\negress = [{entries}]\n'
                      f'[[proxies]]\nname = "world"\nport = 31281\n')
    result = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "proxies", "--json", "--config",
         str(config)], capture_output=True, text=True, timeout=60, env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["open"]["health"] == "1 of 2 upstreams up; out: dead"
    assert rows["open"]["egress"] == ["live", "dead"]  # names, never a password
    assert rows["world"]["health"] == ""
    # No node answering: said so, not guessed.
    config.write_text(config.read_text().replace(f"port = {port}", f"port = {free_port()}"))
    result = subprocess.run(
        [sys.executable, "-m", "meshproxy", "admin", "proxies", "--json", "--config",
         str(config)], capture_output=True, text=True, timeout=60, check=False,
    )
    assert json.loads(result.stdout)[0]["health"] == "unknown (no proxy node answered)"
    # The dashboard's proxies page, for a parent on the proxy.
    settings = env.node.settings
    settings = settings.model_copy(update={"admin": settings.admin.model_copy(
        update={"port": port})})
    make_parent(settings, env.store)  # the built-in plan: every configured proxy
    with TestClient(make_app(settings, env.store, Clock()), follow_redirects=False) as client:
        browser = Browser(client)
        browser.login("pm_parent", PARENT_PASSWORD)
        page = browser.get("/dashboard/proxies/").text
    assert "<th scope=\"col\">Health</th>" in page
    assert "1 of 2 upstreams up; out: dead" in page


def test_a_recent_answer_is_reused_for_fresh_for_seconds(
    watched: tuple[Env, int, list[dict[str, str]]],
) -> None:
    env, port, _ = watched
    settings = env.node.settings
    settings = settings.model_copy(update={"admin": settings.admin.model_copy(
        update={"port": port})})
    first = read_egress_health(settings, fresh_for=60)
    assert first is not None and first["open"]["live"].up
    pool = env.node.dialers["open"].pool
    live = next(e for e in pool.members if e.label == "live")
    env.thread.run(_fail(pool.health, live))
    assert read_egress_health(settings, fresh_for=60) == first  # not asked again
    asked = read_egress_health(settings)
    assert asked is not None and not asked["open"]["live"].up


async def _fail(health: EgressHealth, member: Egress) -> None:
    # On the node's loop, as the dialer does; "an hour from now": no probe brings it back
    # before the test reads it.
    health.failed(member, "test", asyncio.get_running_loop().time() + 3600)
