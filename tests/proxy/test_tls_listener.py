"""The HTTPS proxy listener (tls_port): TLS between client and proxy, then the same HTTP
proxy protocol inside it, with real clients."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable

import requests

from .clients import curl
from .conftest import EGRESS, Env, country_of, echo_json
from .listeners import proxy_ca, start_listeners, tls_env, tls_url

__all__ = ["start_listeners", "tls_env"]  # fixtures


def test_curl_absolute_form_and_connect_through_an_https_proxy(tls_env: Env) -> None:
    env = tls_env
    plain = curl("-i", "-x", tls_url(env), "--proxy-cacert", str(proxy_ca(env)),
                 env.origins.url("/echo"))
    assert plain.returncode == 0, plain.stderr
    head, _, body = plain.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and echo_json(body)["peer"] in EGRESS
    tunnel = curl("-x", tls_url(env), "--proxy-insecure", "--cacert", str(env.origins.ca_file),
                  f"https://localhost:{env.origins.https}/bytes/2000000")
    assert tunnel.returncode == 0, tunnel.stderr
    assert tunnel.stdout == b"x" * 2_000_000  # relayed over the TLS transport, not spliced
    raw_tunnel = curl("-x", tls_url(env, user="alice-country-fr"), "--proxy-insecure",
                      "-p", env.origins.url("/echo"))
    assert raw_tunnel.returncode == 0, raw_tunnel.stderr
    assert country_of(echo_json(raw_tunnel.stdout)["peer"]) == "FR"


def test_requests_through_an_https_proxy(tls_env: Env) -> None:
    env = tls_env
    bundle = proxy_ca(env)  # urllib3 2 verifies the proxy's certificate with it
    proxy = tls_url(env, user="alice-session-tls1")
    peers = set()
    for _ in range(20):  # a new TLS connection each time: the session's egress each time
        with requests.Session() as client:
            response = client.get(env.origins.url("/echo"), proxies={"http": proxy},
                                  verify=str(bundle), timeout=10)
        assert response.status_code == 200, response.text
        peers.add(response.json()["peer"])
    assert len(peers) == 1


def test_refusals_inside_tls_and_what_is_not_tls(tls_env: Env) -> None:
    env = tls_env
    wrong = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                 tls_url(env, password="wrong"), "--proxy-insecure", env.origins.url("/echo"))
    assert wrong.stdout == b"407"
    denied = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-x",
                  tls_url(env, proxy="private"), "--proxy-insecure", env.origins.url("/echo"))
    assert denied.stdout == b"402"
    host, port = env.node.tls_addresses["open"]
    with socket.create_connection((host, port), timeout=5) as sock:  # plain HTTP at it
        sock.sendall(b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not sock.recv(100).startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context(cafile=str(proxy_ca(env)))
    with socket.create_connection((host, port), timeout=5) as sock, \
            context.wrap_socket(sock, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")


def test_a_tls_handshake_that_never_comes_is_closed(
    start_listeners: Callable[..., Env],
) -> None:
    env = start_listeners(header_timeout=0.5)
    started = time.monotonic()
    with socket.create_connection(env.node.tls_addresses["open"], timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
    assert time.monotonic() - started < 3


def test_ip_authentication_inside_tls(tls_env: Env) -> None:
    env = tls_env
    env.store.access.add_ip(env.account("bob", password=None), "127.0.0.1")
    env.sync()
    host, port = env.node.tls_addresses["open"]
    result = curl("-x", f"https://{host}:{port}", "--proxy-insecure", env.origins.url("/echo"))
    assert result.returncode == 0 and echo_json(result.stdout)["peer"] in EGRESS, result.stderr
    assert env.node.directory.by_username["bob"].total_bytes > 0  # by the client's address
