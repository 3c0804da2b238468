"""The load side: wrk for small requests, curl for 1 GiB transfers, a socket client for
idle tunnels. Everything runs on LOAD_CPU and is bounded in time."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.proxies.report import WrkResult, parse_wrk
from bench.proxies.rig import HOST, LOAD_CPU, Server, pinned, tree_cpu_seconds, tree_rss_kib

WRK_LUA = """\
wrk.method = "GET"
wrk.path = "{url}"
wrk.headers["Host"] = "{host}"
{auth}
"""


def wrk_script(directory: Path, name: str, url: str, host: str, authorization: str | None) -> Path:
    """A Lua script that makes every request an absolute-URI forward-proxy request."""
    auth = f'wrk.headers["Proxy-Authorization"] = "{authorization}"' if authorization else ""
    path = directory / f"{name}.lua"
    path.write_text(WRK_LUA.format(url=url, host=host, auth=auth))
    return path


@dataclass(frozen=True, slots=True)
class Measured:
    wrk: WrkResult
    cpu_us_per_request: float | None


def run_wrk(
    origin: Server, proxy: Server | None, path: str, seconds: float, workdir: Path
) -> Measured:
    """`wrk -t1 -c50 --latency` through `proxy` (None: straight to the origin)."""
    origin_host = f"{HOST}:{origin.port}"
    if proxy is None:
        target, script_url, authorization = f"http://{origin_host}", path, None
    else:
        target = proxy.proxy_url
        script_url, authorization = f"http://{origin_host}{path}", proxy.authorization
    name = (proxy.name if proxy else "direct").replace(" ", "_").replace(",", "")
    script = wrk_script(workdir, f"{name}{path.replace('/', '_')}", script_url, origin_host,
                        authorization)  # fmt: skip
    argv = ["wrk", "-t1", "-c50", f"-d{seconds:g}s", "--latency", "--timeout", "5s",
            "-s", str(script), target]  # fmt: skip
    cpu_before = tree_cpu_seconds(proxy.process.pid) if proxy else 0.0
    done = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True,
                          timeout=seconds + 30)  # fmt: skip
    cpu = tree_cpu_seconds(proxy.process.pid) - cpu_before if proxy else 0.0
    result = parse_wrk(done.stdout)
    per_request = cpu * 1e6 / result.requests if proxy and result.requests else None
    return Measured(result, per_request)


@dataclass(frozen=True, slots=True)
class Transfer:
    mbps: float | None  # 10^6 bytes per second; None: it did not finish in time
    core_s_per_gb: float | None
    note: str = ""


def transfer(
    origin: Server, proxy: Server | None, size: int, *, tunnel: bool, max_seconds: float
) -> Transfer:
    """One GET of the big file with curl (through a CONNECT tunnel when `tunnel`)."""
    url = f"http://{HOST}:{origin.port}/big.bin"
    argv = ["curl", "-s", "-o", "/dev/null", "--max-time", f"{max_seconds:g}",
            "-w", "%{http_code} %{size_download} %{time_total}"]  # fmt: skip
    if proxy is not None and proxy.socks:  # a SOCKS5 CONNECT: always a tunnel
        argv += ["-x", f"socks5h://{proxy.auth + '@' if proxy.auth else ''}{HOST}:{proxy.port}"]
    elif proxy is not None:
        argv += ["-x", proxy.proxy_url]
        if proxy.auth:
            argv += ["--proxy-user", proxy.auth]
        if tunnel:
            argv.append("--proxytunnel")
    argv.append(url)
    cpu_before = tree_cpu_seconds(proxy.process.pid) if proxy else 0.0
    done = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True,
                          timeout=max_seconds + 30)  # fmt: skip
    cpu = tree_cpu_seconds(proxy.process.pid) - cpu_before if proxy else 0.0
    status, received, seconds = done.stdout.split()
    moved = int(received)
    if status != "200" or moved != size:
        rate = moved / float(seconds) / 1e6 if float(seconds) else 0.0
        return Transfer(None, None, f"status {status}, {moved:,} of {size:,} bytes "
                        f"in {float(seconds):.0f} s (≈{rate:,.0f} MB/s)")  # fmt: skip
    mbps = size / float(seconds) / 1e6
    core = cpu / (size / 1e9) if proxy else None
    return Transfer(mbps, core)


@dataclass(frozen=True, slots=True)
class IdleTunnels:
    held: int
    kib_per_tunnel: float | None
    note: str = ""


def _socks_tunnel(sock: socket.socket, proxy: Server, origin_port: int) -> None:
    """RFC 1928 CONNECT with RFC 1929 credentials on `sock` (blocking, with a timeout)."""
    user, _, password = (proxy.auth or "").partition(":")
    sock.sendall(b"\x05\x01\x02")
    if sock.recv(2) != b"\x05\x02":
        raise ConnectionError("the proxy refused username/password authentication")
    sock.sendall(bytes([1, len(user)]) + user.encode() + bytes([len(password)])
                 + password.encode())  # fmt: skip
    if sock.recv(2) != b"\x01\x00":
        raise ConnectionError("the proxy refused the credentials")
    sock.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(HOST) + origin_port.to_bytes(2, "big"))
    reply = b""
    while len(reply) < 10:
        piece = sock.recv(10 - len(reply))
        if not piece:
            raise ConnectionError("the proxy closed the tunnel")
        reply += piece
    if reply[1] != 0:
        raise ConnectionError(f"SOCKS5 reply {reply[1]}")


def _open_tunnel(proxy: Server, origin_port: int, deadline: float) -> socket.socket:
    sock = socket.create_connection((HOST, proxy.port), timeout=5)
    if proxy.socks:
        try:
            _socks_tunnel(sock, proxy, origin_port)
        except BaseException:
            sock.close()
            raise
        return sock
    try:
        head = [f"CONNECT {HOST}:{origin_port} HTTP/1.1", f"Host: {HOST}:{origin_port}"]
        if proxy.authorization:
            head.append(f"Proxy-Authorization: {proxy.authorization}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            piece = sock.recv(4096)
            if not piece:
                raise ConnectionError("the proxy closed the tunnel")
            reply += piece
        if not reply.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
            raise ConnectionError(reply.split(b"\r\n", 1)[0].decode("latin-1"))
    except BaseException:
        sock.close()
        raise
    return sock


def idle_tunnels(
    origin: Server, proxy: Server, count: int, *, within: float, settle: float = 1.0
) -> IdleTunnels:
    """Open `count` CONNECT tunnels, hold them, and report the proxy's RSS growth per tunnel.

    A few tunnels are opened and closed first, so code paths and pools are warm."""
    deadline = time.monotonic() + within
    for _ in range(20):
        _open_tunnel(proxy, origin.port, deadline).close()
    time.sleep(settle)
    before = tree_rss_kib(proxy.process.pid)
    held: list[socket.socket] = []
    note = ""
    try:
        while len(held) < count and time.monotonic() < deadline:
            try:
                held.append(_open_tunnel(proxy, origin.port, deadline))
            except OSError as error:
                note = f"stopped at {len(held)} tunnels: {error}"
                break
        time.sleep(settle)
        after = tree_rss_kib(proxy.process.pid)
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()
        # The proxy tears 2,000 tunnels down at once now (a burst of 100 ms of work for
        # meshproxy on a slow machine): the latency runs that follow measure steady state.
        time.sleep(settle)
    if len(held) < count and not note:
        note = f"only {len(held)} tunnels opened in {within:.0f} s"
    per = (after - before) / len(held) if held else None
    return IdleTunnels(len(held), per if len(held) == count else None, note)
