"""What each command imports: the API client loads no server code, a proxy node no API,
dashboard or Alembic (on a migrated database), no process SQLAlchemy's ORM (the store is
Core). Asserted from the modules a real
`meshproxy` process holds when it exits; the times these buy are in docs/benchmarks.md."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click
import httpx
import pytest
from bench.local import free_port

from meshproxy.cli import COMMANDS, cli
from meshproxy.store import Store
from meshproxy.store.migrate import MIGRATIONS, head_revision

# Runs the CLI like the `meshproxy` script and writes sys.modules to argv[1] at exit (and
# how many objects the garbage collector was told to leave alone, gc.freeze).
PROBE = """
import atexit, gc, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
atexit.register(lambda: open(out + ".frozen", "w").write(str(gc.get_freeze_count())))
from meshproxy.cli import cli
cli(sys.argv[1:], prog_name="meshproxy")
"""
SERVER = ("sqlalchemy", "starlette", "alembic", "jinja2", "uvicorn", "meshproxy.store",
          "meshproxy.api", "meshproxy.web", "meshproxy.control", "meshproxy.proxy")
NOT_IN_A_PROXY_NODE = ("starlette", "jinja2", "alembic", "uvicorn", "rich", "httpx",
                       "sqlalchemy.orm",
                       "meshproxy.api", "meshproxy.web", "meshproxy.control",
                       "meshproxy.client", "meshproxy.cli.api_client", "meshproxy.cli.admin",
                       # extras this node's settings do not use (no Redis, no GeoIP)
                       "redis", "maxminddb",
                       # the configuration is read with msgspec, not pydantic (config.py)
                       "pydantic", "pydantic_settings", "pydantic_core",
                       # loaded at the first /metrics scrape (ops/admin.py), and with
                       # prometheus_client's package: its HTTP servers and clients
                       "prometheus_client", "http.server", "http.client", "urllib.request",
                       "wsgiref", "socketserver",
                       # only for a misspelt configuration key (config.py)
                       "difflib",
                       # only for a TLS listener's certificate (cli/node.py, api/tls.py)
                       "cryptography",
                       # the API's and dashboard's repositories (store/store.py)
                       "meshproxy.store.alerts", "meshproxy.store.audit",
                       "meshproxy.domain.alerts", "meshproxy.domain.forms",
                       # Redis's, when redis_url is set (fleet/store.py, proxy/server/node.py)
                       "meshproxy.meter.shared", "meshproxy.meter.fold", "meshproxy.fleet.bans",
                       "meshproxy.fleet.notify", "meshproxy.proxy.server.notices",
                       # a SOCKS5 listener's, when a proxy has a socks_port
                       "meshproxy.proxy.server.socks", "meshproxy.proxy.core.socks5")
# The other database's driver and SQLAlchemy dialect (store/engine.py, store/dialect.py).
OTHER_DATABASE = {"sqlite": ("psycopg", "sqlalchemy.dialects.postgresql"),
                  "postgresql": ("sqlite3", "sqlalchemy.dialects.sqlite")}


def probe(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, str(tmp_path / "modules.txt"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def modules(tmp_path: Path) -> set[str]:
    return set((tmp_path / "modules.txt").read_text().split())


def loaded(names: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in packages))


def stop_once_listening(node: subprocess.Popen[str]) -> None:
    """The proxy node's first line says its "edge" listener is up; SIGTERM then ends it
    cleanly (exit status 0)."""
    try:
        assert node.stdout is not None
        line = node.stdout.readline()
        assert "proxy edge listening on 127.0.0.1:" in line, line
    finally:
        node.send_signal(signal.SIGTERM)
        _, err = node.communicate(timeout=60)
    assert node.returncode == 0, err


@pytest.mark.parametrize(
    "args",
    [
        ["api", "sub", "--help"],
        ["client", "sub", "--help"],
        ["api", "--help"],
        # A real call (to a closed loopback port): the client's whole path, no server code.
        ["client", "--api-url", "http://127.0.0.1:9", "--api-user", "u", "--api-password", "p",
         "--retries", "0", "sub", "list"],
    ],
)
def test_api_client_imports_no_server_code(tmp_path: Path, args: list[str]) -> None:
    process = probe(tmp_path, *args)
    out, err = process.communicate(timeout=60)
    assert process.returncode in (0, 4), (out, err)  # 4: the closed port's network error
    assert loaded(modules(tmp_path), SERVER) == []


def test_help_lists_every_command_and_imports_none(tmp_path: Path) -> None:
    process = probe(tmp_path, "--help")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    for name in ("admin", "api", "api-node", "client", "db", "proxy", "serve"):
        assert f"  {name} " in out, out
    assert loaded(modules(tmp_path), ("meshproxy.cli.", "meshproxy.config")) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_listed_command_is_the_command_of_that_name(name: str) -> None:
    with click.Context(cli) as context:
        command = cli.get_command(context, name)
    assert command is not None and command.name == name


@pytest.mark.parametrize("name", ["api", "client"])
def test_client_and_its_old_spelling_share_the_subcommands(tmp_path: Path, name: str) -> None:
    process = probe(tmp_path, name, "--help")
    out, _ = process.communicate(timeout=60)
    for subcommand in ("sub", "ips", "hostnames", "proxies", "geoips", "usage-report"):
        assert f"  {subcommand} " in out, out


def test_the_head_revision_read_without_alembic_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    assert head_revision() == script.get_current_head() is not None


def test_proxy_node_imports_no_api_dashboard_or_alembic(tmp_path: Path, store_url: str) -> None:
    Store.open(store_url).close()  # migrated already: the node only checks the revision
    config = tmp_path / "node.toml"
    config.write_text(
        f'database_url = "{store_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        'plans = [{ name = "default", default_proxies = ["edge"] }]\n'
        "[admin]\nenabled = true\nlisten = \"127.0.0.1\"\nport = 0\n"
        f'[[proxies]]\nname = "edge"\nlisten = "127.0.0.1"\nport = {free_port()}\n'
    )
    node = probe(tmp_path, "proxy", "--config", str(config))
    stop_once_listening(node)
    names = modules(tmp_path)
    assert "meshproxy.proxy.server.node" in names  # the probe saw a running node
    other = OTHER_DATABASE["postgresql" if store_url.startswith("postgresql") else "sqlite"]
    assert loaded(names, (*NOT_IN_A_PROXY_NODE, *other)) == []
    # Ready, it took its start-up's objects out of the collector's walks (cli/node._settle).
    assert int((tmp_path / "modules.txt.frozen").read_text()) > 10_000


def test_the_store_runs_without_the_orm(tmp_path: Path) -> None:
    """Migrating a new database (Alembic), writing and reading accounts: no sqlalchemy.orm."""
    script = (
        "import sys\n"
        "from meshproxy.store import Store\n"
        f"store = Store.open('sqlite:///{tmp_path / 'new.db'}')\n"
        "store.accounts.create('parent', plan='default', billing_day=1, proxies=['edge'])\n"
        "assert store.accounts.get('parent') is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.orm')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_api_node_runs_the_api_and_not_the_client(tmp_path: Path) -> None:
    https_port = free_port()
    config = tmp_path / "api.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        f'[api]\nlisten = "127.0.0.1"\nhttps_port = {https_port}\nhttp_port = {free_port()}\n'
        "[admin]\nenabled = false\n"
    )
    node = probe(tmp_path, "api-node", "--config", str(config))
    try:
        assert node.stdout is not None
        banner = ""
        for _ in range(100):  # the banner's lines, up to its last
            line = node.stdout.readline()
            banner += line
            if not line or line.startswith("Stop with Ctrl-C"):
                break
        assert "API:" in banner and "Proxy:" not in banner, banner
        response = httpx.get(f"https://127.0.0.1:{https_port}/api/proxies/", verify=False)
        assert response.status_code == 401
    finally:
        node.send_signal(signal.SIGTERM)
        _, err = node.communicate(timeout=60)
    assert node.returncode == 0, err
    names = modules(tmp_path)
    assert "meshproxy.api.app" in names
    assert loaded(names, ("meshproxy.cli.api_client", "meshproxy.client")) == []
