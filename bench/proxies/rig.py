"""The processes of the benchmark: the nginx origin and every proxy, each in a temp dir.

Every server binds 127.0.0.1 only, on a port picked free at start. Proxies run on
PROXY_CPU, everything else (origin, load, this script) on LOAD_CPU.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.local import free_port

LOAD_CPU = 0
PROXY_CPU = 1
HOST = "127.0.0.1"
USER, PASSWORD = "bench", "bench-password"
SMALL, MEDIUM = 1024, 64 * 1024
START_SECONDS = 20.0


def wait_listening(port: int, process: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {within:.0f} s")


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv]


def tool(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    return None


@dataclass
class Server:
    """A started process and how to reach it."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    auth: str | None = None  # "user:password" for proxy authentication
    version: str = ""
    socks: bool = False  # `port` is a SOCKS5 listener (meshproxy's socks_port)
    notes: list[str] = field(default_factory=list)

    @property
    def proxy_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def authorization(self) -> str | None:
        if self.auth is None:
            return None
        return "Basic " + base64.b64encode(self.auth.encode()).decode()

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def spawn(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """A process in its own group (so stop() reaches its workers), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, start_new_session=True,
        )  # fmt: skip


# ---- the origin -------------------------------------------------------------------------

NGINX_CONF = """\
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_header_timeout 600s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    default_type application/octet-stream;
    server {{
        listen {host}:{port} backlog=4096;
        root {dir}/www;
    }}
}}
"""


def start_origin(workdir: Path, big_bytes: int) -> Server:
    nginx = tool("nginx", "/usr/sbin/nginx")
    if nginx is None:
        raise SystemExit("nginx is missing: apt-get install nginx-light")
    www = workdir / "www"
    www.mkdir(parents=True)
    (www / "1k.bin").write_bytes(os.urandom(SMALL))
    (www / "64k.bin").write_bytes(os.urandom(MEDIUM))
    with (www / "big.bin").open("wb") as big:  # sparse: served from zero pages, no disk
        big.truncate(big_bytes)
    for path in (workdir.parent, workdir, www, *www.iterdir()):
        path.chmod(0o755)
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, host=HOST, port=port))
    process = spawn(pinned(LOAD_CPU, [nginx, "-c", str(conf), "-p", str(workdir)]),
                    workdir / "nginx.out")  # fmt: skip
    wait_listening(port, process, START_SECONDS)
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
    return Server("nginx", port, process, version=version.split("/")[-1])


# ---- the peers ----------------------------------------------------------------------------

SQUID_CONF = """\
http_port {host}:{port}
acl all_src src all
http_access allow all_src
cache deny all
cache_mem 0 MB
memory_pools off
max_filedescriptors 65536
workers 1
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log none
cache_store_log none
coredump_dir {dir}
cache_effective_user proxy
shutdown_lifetime 1 seconds
client_persistent_connections on
server_persistent_connections on
read_timeout 15 minutes
client_lifetime 1 hour
"""


def start_squid(workdir: Path) -> Server | None:
    squid = tool("squid", "/usr/sbin/squid")
    if squid is None:
        return None
    workdir.mkdir()
    shutil.chown(workdir, "proxy", "proxy")
    port = free_port()
    conf = workdir / "squid.conf"
    conf.write_text(SQUID_CONF.format(dir=workdir, host=HOST, port=port))
    process = spawn(pinned(PROXY_CPU, [squid, "-N", "-f", str(conf)]), workdir / "squid.out")
    wait_listening(port, process, START_SECONDS)
    version = subprocess.run([squid, "-v"], capture_output=True, text=True).stdout.split()[3]
    return Server("squid", port, process, version=version)


TINYPROXY_CONF = """\
User nobody
Group nogroup
Port {port}
Listen {host}
Timeout 900
MaxClients 8192
LogLevel Critical
PidFile "{dir}/tinyproxy.pid"
LogFile "{dir}/tinyproxy.log"
Allow 127.0.0.0/8
DisableViaHeader Yes
"""


def start_tinyproxy(workdir: Path) -> Server | None:
    tinyproxy = tool("tinyproxy", "/usr/bin/tinyproxy")
    if tinyproxy is None:
        return None
    workdir.mkdir()
    shutil.chown(workdir, "nobody", "nogroup")
    port = free_port()
    conf = workdir / "tinyproxy.conf"
    conf.write_text(TINYPROXY_CONF.format(dir=workdir, host=HOST, port=port))
    process = spawn(pinned(PROXY_CPU, [tinyproxy, "-d", "-c", str(conf)]),
                    workdir / "tinyproxy.out")  # fmt: skip
    wait_listening(port, process, START_SECONDS)
    version = subprocess.run([tinyproxy, "-v"], capture_output=True, text=True).stdout.split()
    return Server("tinyproxy", port, process, version=version[-1] if version else "")


def start_proxy_py(workdir: Path, executable: str | None) -> Server | None:
    if executable is None:
        return None
    workdir.mkdir()
    port = free_port()
    argv = [executable, "--hostname", HOST, "--port", str(port), "--num-workers", "1",
            "--num-acceptors", "1", "--log-level", "ERROR"]  # fmt: skip
    process = spawn(pinned(PROXY_CPU, argv), workdir / "proxy.py.out", cwd=workdir)
    wait_listening(port, process, START_SECONDS)
    version = subprocess.run([executable, "--version"], capture_output=True, text=True)
    return Server("proxy.py", port, process, version=version.stdout.strip())


def start_pproxy(workdir: Path, executable: str | None) -> Server | None:
    """pproxy's HTTP listener: one process on uvloop (as meshproxy), through run_pproxy.py
    when the Python of pproxy's venv is beside it."""
    if executable is None:
        return None
    workdir.mkdir()
    port = free_port()
    argv = [executable, "-l", f"http://{HOST}:{port}"]
    python = Path(executable).with_name("python")
    if python.is_file():
        argv = [str(python), str(Path(__file__).with_name("run_pproxy.py")), *argv[1:]]
    process = spawn(pinned(PROXY_CPU, argv), workdir / "pproxy.out", cwd=workdir)
    wait_listening(port, process, START_SECONDS)
    version = subprocess.run([executable, "--version"], capture_output=True, text=True)
    return Server("pproxy", port, process, version=version.stdout.strip().removeprefix("pproxy "))


# ---- meshproxy ---------------------------------------------------------------------------

MESHPROXY_CONF = """\
data_dir = "{dir}"
[api]
tls = false
require_https = false
[proxy]
allow_destinations = ["127.0.0.0/8"]
tunnel_idle_timeout = 3600
idle_timeout = 600
[[plans]]
name = "default"
default_proxies = ["bench"]
[[proxies]]
name = "bench"
listen = "{host}"
port = {port}
egress = [{{address = "127.0.0.2"}}, {{address = "127.0.0.3"}},
          {{address = "127.0.0.4"}}, {{address = "127.0.0.5"}}]
"""


def start_meshproxy(
    workdir: Path, meshproxy: str, *, metering: bool, access_log: bool = True,
    socks: bool = False, wrapper: tuple[str, ...] = (), start_seconds: float = START_SECONDS,
    proxy_settings: str = "",
) -> Server:
    """meshproxy's HTTP listener, or with `socks` its SOCKS5 listener of the same proxy.
    `wrapper`: what runs the node (valgrind, for bench.instructions); `proxy_settings`:
    lines added to its [proxy] table."""
    workdir.mkdir()
    port = free_port()
    conf = workdir / "meshproxy.toml"
    text = MESHPROXY_CONF.format(dir=workdir, host=HOST, port=port)
    text = text.replace("[proxy]\n", "[proxy]\n" + proxy_settings)
    if socks:
        port = free_port()
        text += f"socks_port = {port}\n"  # the [[proxies]] table is the last one
    conf.write_text(text if access_log else text + "[access_log]\nenabled = false\n")
    # A new database first: `admin create` refuses a data_dir without one (a wrong directory).
    for step in (["db", "upgrade"], ["admin", "create", USER, "--password", PASSWORD]):
        created = subprocess.run(
            [meshproxy, *step, "--config", str(conf)], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        if created.returncode:
            break
    if created.returncode:
        raise RuntimeError(f"meshproxy {step[0]} {step[1]} failed: {created.stderr.strip()}")
    argv = [meshproxy, "proxy", "--config", str(conf), "--drain-timeout", "1"]
    if not metering:
        argv.append("--no-metering")
    process = spawn(pinned(PROXY_CPU, [*wrapper, *argv]), workdir / "meshproxy.out")
    wait_listening(port, process, start_seconds)
    name = "meshproxy" if metering else "meshproxy, metering off"
    if not access_log:
        name += ", access log off"
    if socks:
        name += ", SOCKS5"
    return Server(name, port, process, auth=f"{USER}:{PASSWORD}", socks=socks)


# ---- what a process tree uses -------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return pids


def tree_rss_kib(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree (threads included)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


@contextlib.contextmanager
def stopping(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
