"""`meshproxy proxy` with a SOCKS5 and an HTTPS proxy listener: both announced, the TLS
listener's certificate generated once before the node starts (the API's, in
data/tls), and real curl traffic through each."""

from __future__ import annotations

import http.server
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.local import free_port

from meshproxy.domain.passwords import hash_password
from meshproxy.store import Store

MESHPROXY = str(Path(sys.executable).with_name("meshproxy"))


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello through the proxy"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-sS", "--noproxy", "", "--max-time", "20", *args],
                          capture_output=True, timeout=30, check=False)  # fmt: skip


def test_socks5_and_https_listeners_of_a_proxy_node(
    tmp_path: Path, sqlite_url: str, origin: int
) -> None:
    store = Store.open(sqlite_url)
    store.accounts.create("alice", password_hash=hash_password("pw"), proxies=("edge",),
                         billing_day=1)  # fmt: skip
    store.close()
    http_port, socks_port, tls_port = free_port(), free_port(), free_port()
    config = tmp_path / "node.toml"
    config.write_text(
        f'database_url = "{sqlite_url}"\ndata_dir = "{tmp_path / "data"}"\n'
        'plans = [{ name = "default", default_proxies = ["edge"] }]\n'
        '[proxy]\nallow_destinations = ["127.0.0.0/8"]\n'
        f'[[proxies]]\nname = "edge"\nlisten = "127.0.0.1"\nport = {http_port}\n'
        f"socks_port = {socks_port}\ntls_port = {tls_port}\n"
    )
    node = subprocess.Popen([MESHPROXY, "proxy", "--config", str(config)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert node.stdout is not None
        lines = [node.stdout.readline() for _ in range(3)]
        assert lines == [
            f"proxy edge listening on 127.0.0.1:{http_port}\n",
            f"proxy edge SOCKS5 listening on 127.0.0.1:{socks_port}\n",
            f"proxy edge HTTPS listening on 127.0.0.1:{tls_port}\n",
        ], lines
        certificate = tmp_path / "data" / "tls" / "api-cert.pem"
        assert certificate.exists()
        url = f"http://127.0.0.1:{origin}/"
        socks = curl("-x", f"socks5h://alice-session-s1:pw@127.0.0.1:{socks_port}", url)
        assert socks.stdout == b"hello through the proxy", socks.stderr
        tls = curl("-x", f"https://alice:pw@127.0.0.1:{tls_port}", "--proxy-cacert",
                   str(certificate), url)  # fmt: skip
        assert tls.stdout == b"hello through the proxy", tls.stderr
        tunnel = curl("-p", "-x", f"https://alice:pw@127.0.0.1:{tls_port}", "--proxy-cacert",
                      str(certificate), url)  # fmt: skip
        assert tunnel.stdout == b"hello through the proxy", tunnel.stderr
    finally:
        node.send_signal(signal.SIGTERM)
        _, err = node.communicate(timeout=60)
    assert node.returncode == 0, err
