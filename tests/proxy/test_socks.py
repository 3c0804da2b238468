"""The SOCKS5 listener through a real node: real clients, every refusal, metering."""

from __future__ import annotations

import contextlib
import socket
import struct
import time

import httpx
import requests

from meshproxy.domain.units import GB
from support.polling import wait_until

from .clients import curl
from .conftest import EGRESS, Env, country_of, echo_json
from .listeners import socks_env, socks_url, start_listeners
from .test_quota_cut import preload

__all__ = ["socks_env", "start_listeners"]  # fixtures


def socks_connect(
    env: Env, target: tuple[str, int], user: str | None = "alice", password: str = "pw",
    proxy: str = "open", source: str = "127.0.0.1",
) -> tuple[socket.socket, bytes]:
    """A raw RFC 1928/1929 handshake; the socket and the request's reply (or the
    method/auth answer that ended it)."""
    sock = socket.create_connection(env.node.socks_addresses[proxy], timeout=10,
                                    source_address=(source, 0))
    sock.sendall(b"\x05\x01" + (b"\x02" if user is not None else b"\x00"))
    method = sock.recv(2)
    if method[1:] == b"\xff":
        return sock, method
    if user is not None:
        name, secret = user.encode(), password.encode()
        sock.sendall(b"\x01" + bytes([len(name)]) + name + bytes([len(secret)]) + secret)
        answer = sock.recv(2)
        if answer != b"\x01\x00":
            return sock, answer
    host, port = target
    if ":" in host:
        address = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    elif host.replace(".", "").isdigit():
        address = b"\x01" + socket.inet_aton(host)
    else:
        address = b"\x03" + bytes([len(host)]) + host.encode()
    sock.sendall(b"\x05\x01\x00" + address + struct.pack("!H", port))
    return sock, recv_reply(sock)


def recv_reply(sock: socket.socket) -> bytes:
    head = sock.recv(4)
    if len(head) < 4:
        return head
    rest = 4 + 2 if head[3] == 1 else 16 + 2
    return head + sock.recv(rest)


def http_get(sock: socket.socket, path: str = "/echo") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def test_curl_socks5_hostname_and_socks5_with_every_target_kind(socks_env: Env) -> None:
    env = socks_env
    for scheme, url, proxy in [
        ("socks5h", f"http://localhost:{env.origins.http}/echo", "open"),  # the proxy resolves
        ("socks5", f"http://127.0.0.1:{env.origins.http}/echo", "open"),  # an IPv4 target
        ("socks5", f"http://[::1]:{env.origins.ipv6}/echo", "world"),  # an IPv6 target
    ]:
        result = curl("-x", socks_url(env, scheme=scheme, proxy=proxy), url)
        assert result.returncode == 0, (url, result.stderr)
        peer = echo_json(result.stdout)["peer"]
        assert peer in EGRESS or peer == "::1"
    # No IPv6 egress on `open`: "network unreachable" (curl says which reply it got).
    ipv6 = curl("-x", socks_url(env, scheme="socks5"), f"http://[::1]:{env.origins.ipv6}/")
    assert ipv6.returncode == 97 and b"(3)" in ipv6.stderr
    tls = curl("--socks5-hostname", socks_url(env, scheme="socks5h").split("//")[1],
               "--cacert", str(env.origins.ca_file), f"https://localhost:{env.origins.https}/echo")
    assert tls.returncode == 0, tls.stderr


def test_requests_socks5h_and_httpx_socks5(socks_env: Env) -> None:
    env = socks_env
    proxy = socks_url(env, user="alice-country-de")
    url = env.origins.url("/echo")
    for _ in range(5):
        response = requests.get(url, proxies={"http": proxy}, timeout=10)
        assert country_of(response.json()["peer"]) == "DE"
    with httpx.Client(proxy=socks_url(env, scheme="socks5"), timeout=10) as client:
        assert len(client.get(env.origins.url("/bytes/300000")).content) == 300_000



def test_a_session_keeps_its_egress_over_20_new_socks_connections(socks_env: Env) -> None:
    proxy = socks_url(socks_env, user="alice-session-sock1-sesstime-20")
    peers = {
        requests.get(socks_env.origins.url("/echo"), proxies={"http": proxy},
                     timeout=10).json()["peer"]
        for _ in range(20)
    }
    assert len(peers) == 1


def test_the_reply_names_the_egress_and_the_tunnel_is_metered(socks_env: Env) -> None:
    env = socks_env
    before = env.usage("alice")[1]
    sock, reply = socks_connect(env, ("127.0.0.1", env.origins.http))
    assert reply[:2] == b"\x05\x00"
    egress = socket.inet_ntoa(reply[4:8])
    with sock:
        body = http_get(sock, "/bytes/1000000")
    assert len(body) > 1_000_000
    assert echo_json(http_get(socks_connect(env, ("127.0.0.1", env.origins.http))[0]).partition(
        b"\r\n\r\n")[2])["peer"] in EGRESS
    assert egress in EGRESS

    def charged() -> int:
        env.flush()
        return env.usage("alice")[1] - before

    wait_until(lambda: charged() >= 1_000_000, 5, lambda: charged(), 0.1)


def test_407_wrong_credentials_bad_option_and_no_auth_without_ip_auth(socks_env: Env) -> None:
    env = socks_env
    target = ("127.0.0.1", env.origins.http)
    assert socks_connect(env, target, password="wrong")[1] == b"\x01\x01"
    assert socks_connect(env, target, user="alice-colour-red")[1] == b"\x01\x01"
    assert socks_connect(env, target, user=None)[1] == b"\x05\xff"  # no IP authentication
    result = curl("-x", socks_url(env, password="wrong"), env.origins.url("/echo"))
    assert result.returncode != 0


def test_ip_authenticated_clients_may_use_no_auth(socks_env: Env) -> None:
    env = socks_env
    env.store.access.add_ip(env.account("bob", password=None), "127.0.0.77")
    env.sync()
    sock, reply = socks_connect(env, ("127.0.0.1", env.origins.http), user=None,
                                source="127.0.0.77")
    assert reply[:2] == b"\x05\x00"
    with sock:
        assert b"200 OK" in http_get(sock)
    assert socks_connect(env, ("127.0.0.1", env.origins.http), user=None,
                         source="127.0.0.78")[1] == b"\x05\xff"


def test_402_403_509_and_unsupported_commands_map_onto_reply_codes(socks_env: Env) -> None:
    env = socks_env
    target = ("127.0.0.1", env.origins.http)
    assert socks_connect(env, target, proxy="private")[1][:2] == b"\x05\x02"  # 402
    env.account("carol", total_limit_gb=1)
    preload(env, "carol", GB)
    env.sync()
    assert socks_connect(env, target, user="carol")[1][:2] == b"\x05\x02"  # 509
    assert socks_connect(env, ("10.1.2.3", 80))[1][:2] == b"\x05\x02"  # 403 (policy)
    assert socks_connect(env, ("no-such-host.invalid", 80))[1][:2] == b"\x05\x04"
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    closed_port = refused.getsockname()[1]
    refused.close()
    assert socks_connect(env, ("127.0.0.1", closed_port))[1][:2] == b"\x05\x05"
    env.store.accounts.update("alice", active=False)
    env.sync()
    assert socks_connect(env, target)[1][:2] == b"\x05\x02"  # 402 (deactivated)
    env.store.accounts.update("alice", active=True)
    env.sync()
    for command in (2, 3):  # BIND, UDP ASSOCIATE
        with socket.create_connection(env.node.socks_addresses["open"], timeout=10) as sock:
            sock.sendall(b"\x05\x01\x02")
            sock.recv(2)
            sock.sendall(b"\x01\x05alice\x02pw")
            assert sock.recv(2) == b"\x01\x00"
            sock.sendall(bytes([5, command, 0, 1, 127, 0, 0, 1, 0, 80]))
            assert recv_reply(sock)[:2] == b"\x05\x07"
            assert sock.recv(1) == b""


def test_an_open_socks_tunnel_is_cut_within_2_s_of_its_quota(socks_env: Env) -> None:
    env = socks_env
    env.account("dave")
    env.sync()
    sock, reply = socks_connect(env, ("127.0.0.1", env.origins.http), user="dave")
    assert reply[:2] == b"\x05\x00"
    preload(env, "dave", GB)  # its traffic elsewhere, then a limit it has crossed
    env.store.accounts.update("dave", total_limit_gb=1)
    env.sync()
    started = time.monotonic()
    sock.settimeout(5)
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""
    assert time.monotonic() - started < 2
    sock.close()
