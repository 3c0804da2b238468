"""A local cluster: 2 API nodes and 3 proxy nodes on this machine, sharing a fresh schema
of the local PostgreSQL and a fresh key prefix of the local Redis.

    .venv/bin/python -m bench.cluster            # start, print the endpoints, Ctrl-C stops
    .venv/bin/python -m bench.cluster --keep     # keep the schema and keys afterwards
    .venv/bin/python -m bench.cluster --apis 0 --proxies 0 --serving 1   # one node

Every node is a real `meshproxy api` / `proxy` / `serve` process with its own config file
(in a temporary directory, with its log); all proxy nodes serve the proxy `open`. A parent
account `cluster` is created with the password printed. tests/cluster drives it.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
from bench.local import POSTGRES, REDIS, create_schema, drop_scratch, free_port, schema_url

from meshproxy.config import load_settings
from meshproxy.control.operator import create_parent
from meshproxy.fleet import open_store

PARENT = "cluster"
PARENT_PASSWORD = "cluster-password"


@dataclass
class Node:
    name: str
    role: str  # "api" | "proxy" | "serve" (both)
    config: Path
    api_port: int
    proxy_port: int
    admin_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.config.with_suffix(".log")


@dataclass
class Cluster:
    apis: int = 2
    proxies: int = 3
    serving: int = 0  # nodes with both roles (`meshproxy serve`): 1 and no others = one node
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cluster-")))
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    flush_interval: float = 0.25
    fold_interval: float = 1.0
    postgres: str = POSTGRES  # the servers (tests of failures pass private ones)
    redis_url: str = REDIS
    nodes: list[Node] = field(default_factory=list)

    @property
    def schema(self) -> str:
        return f"cluster_{self.tag}"

    @property
    def prefix(self) -> str:
        return f"cluster-{self.tag}:"

    @property
    def database_url(self) -> str:
        return schema_url(self.schema, self.postgres)

    @property
    def api_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.role in ("api", "serve")]

    @property
    def proxy_nodes(self) -> list[Node]:
        return [n for n in self.nodes if n.role in ("proxy", "serve")]

    def _config(self, node_dir: Path, api_port: int, proxy_port: int, admin_port: int) -> str:
        return f"""\
data_dir = "{node_dir}"
plans = [{{ name = "default", default_proxies = ["open"] }}]
database_url = "{self.database_url}"
redis_url = "{self.redis_url}"
[shared]
prefix = "{self.prefix}"
fold_interval = {self.fold_interval}
[admin]
port = {admin_port}
[api]
listen = "127.0.0.1"
https_port = {api_port}
tls = false
require_https = false
[proxy]
allow_destinations = ["127.0.0.0/8"]
flush_interval = {self.flush_interval}
[[proxies]]
name = "open"
port = 31280
listen_port = {proxy_port}
"""

    def start(self, timeout: float = 30.0) -> None:
        create_schema(self.schema, self.postgres)
        roles = ["api"] * self.apis + ["proxy"] * self.proxies + ["serve"] * self.serving
        for index, role in enumerate(roles):
            name = f"{role}{roles[: index + 1].count(role)}"
            node_dir = self.directory / name
            node_dir.mkdir(parents=True, exist_ok=True)
            api_port, proxy_port, admin_port = free_port(), free_port(), free_port()
            config = self.directory / f"{name}.toml"
            config.write_text(self._config(node_dir, api_port, proxy_port, admin_port))
            self.nodes.append(Node(name, role, config, api_port, proxy_port, admin_port))
        settings = load_settings(self.nodes[0].config)
        store = open_store(settings)  # migrations once, before the nodes start
        create_parent(settings, store, PARENT, password=PARENT_PASSWORD)
        store.close()
        for node in self.nodes:
            with node.log.open("wb") as log:
                node.process = subprocess.Popen(
                    [sys.executable, "-m", "meshproxy", node.role, "--config", str(node.config)],
                    stdout=log, stderr=subprocess.STDOUT,
                )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while not self.ready(node):
                died = node.process is not None and node.process.poll() is not None
                if died or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{node.name} did not start:\n{node.log.read_text()}")
                time.sleep(0.1)

    def ready(self, node: Node) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{node.admin_port}/readyz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    def accounts_loaded(self, node: Node) -> int:
        """How many accounts a proxy node's directory holds (its metrics say)."""
        text = httpx.get(f"http://127.0.0.1:{node.admin_port}/metrics", timeout=2).text
        for line in text.splitlines():
            if line.startswith("meshproxy_accounts_loaded "):
                return int(float(line.split()[1]))
        return 0

    def wait_for_accounts(self, count: int, timeout: float = 5.0) -> None:
        """Until every proxy node has loaded `count` accounts (a test that just created
        one must not send requests a node would refuse, and count toward a ban, first)."""
        deadline = time.monotonic() + timeout
        while any(self.accounts_loaded(n) < count for n in self.proxy_nodes):
            if time.monotonic() > deadline:
                loaded = {n.name: self.accounts_loaded(n) for n in self.proxy_nodes}
                raise TimeoutError(f"not every proxy node has {count} accounts: {loaded}")
            time.sleep(0.02)

    def api_url(self, index: int = 0) -> str:
        """The API of the `index`th API node (counted round: a test written for two API
        nodes runs on one too)."""
        nodes = self.api_nodes
        return f"http://127.0.0.1:{nodes[index % len(nodes)].api_port}"

    def proxy_address(self, index: int) -> tuple[str, int]:
        """The proxy listener of the `index`th proxy node (counted round, as above)."""
        nodes = self.proxy_nodes
        return ("127.0.0.1", nodes[index % len(nodes)].proxy_port)

    def stop(self, *, keep: bool = False) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(20)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
        if keep:
            return
        drop_scratch(self.schema, self.prefix, postgres=self.postgres, redis_url=self.redis_url)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--proxies", type=int, default=3)
    parser.add_argument("--serving", type=int, default=0,
                        help="nodes with both roles (--apis 0 --proxies 0 --serving 1: one node)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and Redis keys")
    args = parser.parse_args()
    cluster = Cluster(apis=args.apis, proxies=args.proxies, serving=args.serving)
    cluster.start()
    print(f"cluster {cluster.tag}: schema {cluster.schema}, Redis prefix {cluster.prefix}")
    print(f"parent account: {PARENT} / {PARENT_PASSWORD}")
    for node in cluster.nodes:
        where = {"api": f"API on 127.0.0.1:{node.api_port}",
                 "proxy": f"proxy open on 127.0.0.1:{node.proxy_port}",
                 "serve": f"API on 127.0.0.1:{node.api_port}, proxy open on "
                          f"127.0.0.1:{node.proxy_port}"}[node.role]
        print(f"  {node.name}: {where}, "
              f"metrics http://127.0.0.1:{node.admin_port}/metrics, log {node.log}")
    print(f"try: curl -u {PARENT}:{PARENT_PASSWORD} {cluster.api_url()}/api/proxies/")
    print("Ctrl-C stops every node" + ("" if args.keep else " and drops the schema and keys"))
    stop = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stop:
        time.sleep(0.2)
    cluster.stop(keep=args.keep)


if __name__ == "__main__":
    main()
