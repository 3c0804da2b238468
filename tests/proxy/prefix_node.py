"""Run inside a network namespace by tests/proxy/test_egress_prefix.py: an origin on
[::1] that answers each request with the source address it came from, a proxy node
whose only egress is a routed prefix, and curl through it (plain HTTP and CONNECT).
Prints {"plain": [[source, X-ProxyMesh-IP], ...], "tunnels": [source, ...], "idle": the
upstream connections kept idle after the plain requests, "sticky": [source, ...] of one
sticky session, "sticky_idle": idle after those} as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile

from meshproxy.config import load_settings
from meshproxy.domain.passwords import hash_password
from meshproxy.proxy.server.node import ProxyNode
from meshproxy.store import Store


async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")[0]
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            body = peer.encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def curl(*args: str) -> tuple[str, str]:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "10", "-D", "-", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode:
        raise RuntimeError(f"curl {args}: {err.decode()}")
    text = out.decode()
    head, _, body = text.rpartition("\r\n\r\n")
    shown = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
             if line.lower().startswith("x-proxymesh-ip:")]
    return body, shown[-1] if shown else ""


async def main(prefix: str, count: int) -> None:
    server = await asyncio.start_server(origin, "::1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        settings = load_settings(
            None, data_dir=data, access_log={"enabled": False},
            proxy={"allow_destinations": ["::1/128"]},
            proxies=[{"name": "open", "listen": "127.0.0.1", "listen_port": 0,
                      "egress": [{"prefix": prefix, "country": "DE"}]}],
        )
        store = Store.open(settings.database_url)
        store.accounts.create("alice", password_hash=hash_password("pw"), proxies=("open",),
                             billing_day=1)
        node = ProxyNode(settings, store)
        await node.start()
        host, proxy_port = node.addresses["open"]
        proxy = f"http://alice:pw@{host}:{proxy_port}"
        target = f"http://[::1]:{port}/"
        try:
            plain = [await curl("-x", proxy, target) for _ in range(count)]
            idle = len(node.services.upstreams)
            session = ("-H", "X-ProxyMesh-Session: s1")
            sticky = [(await curl("-x", proxy, *session, target))[0] for _ in range(3)]
            sticky_idle = len(node.services.upstreams)
            tunnels = [(await curl("-p", "-x", proxy, target))[0] for _ in range(5)]
        finally:
            await node.stop(1.0)
            store.close()
    server.close()
    print(json.dumps({"plain": plain, "tunnels": tunnels, "idle": idle, "sticky": sticky,
                      "sticky_idle": sticky_idle}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
