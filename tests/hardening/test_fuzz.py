"""Property-based fuzzing of the request-head path and the credentials path.

Bounded here (the `ci` profile: 300 examples per property); the long run is
    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/hardening/test_fuzz.py -q
(200,000 examples per property; see docs/reliability.md).

Properties: the parser and `prepare_request` never raise; every head they accept goes
upstream well-formed (one Host, no Proxy-*/X-ProxyMesh-*, no stray CR/LF, framing
re-parsable), everything else is refused with 400/431/501/505; credentials of any bytes
are either a (username, password) pair or refused, never an exception; and a live node fed
mutated requests always answers with a status line or closes, and holds nothing after.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
from collections.abc import Callable
from typing import Any

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshproxy.domain.bans import BanPolicy
from meshproxy.domain.basic_auth import parse_basic
from meshproxy.proxy.core.directory import AccountDirectory, CredentialCheck
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.request import Body, PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.server import dial as dial_module
from meshproxy.proxy.server.resolver import Resolver
from mutations import mutations
from proxy.clients import basic

from .conftest import Env
from .raw import fresh_source, open_from, settle

MAX_HEAD = 64 * 1024


class HeadCollector:
    """The request side of ClientConnection, reduced to what builds a RequestHead."""

    def __init__(self) -> None:
        self.heads: list[RequestHead] = []
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self.url, self.headers = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        p = self.parser
        self.heads.append(RequestHead(p.get_method(), self.url, p.get_http_version(),
                                      self.headers, p.should_keep_alive()))


def parse_heads(data: bytes) -> list[RequestHead]:
    collector = HeadCollector()
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        collector.parser.feed_data(data)
    return collector.heads


def check_prepared(head: RequestHead, result: PreparedRequest | ProxyError) -> None:
    if isinstance(result, ProxyError):
        assert result.status in (400, 431, 501, 505), result
        return
    assert 1 <= result.target.port <= 65535
    assert head.version in ("1.0", "1.1")
    if result.connect:
        assert result.upstream_head == b""
        return
    upstream = result.upstream_head
    assert upstream.endswith(b"\r\n\r\n")
    lines = upstream[:-4].split(b"\r\n")
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
    names = [line.split(b":", 1)[0].lower() for line in lines[1:]]
    assert names.count(b"host") == 1
    assert not any(n.startswith((b"proxy-", b"x-proxymesh-")) for n in names)
    assert names.count(b"content-length") + names.count(b"transfer-encoding") <= 1
    if result.body is Body.CHUNKED:
        assert b"transfer-encoding" in names
    # What goes upstream parses as exactly one request with the same head.
    again = parse_heads(upstream)
    assert len(again) == 1
    assert again[0].method == head.method
    assert len(again[0].headers) == len(names)


VALID = [
    b"GET http://127.0.0.1:8080/a?b=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: f\r\n\r\n",
    b"POST http://example.com/up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello",
    b"POST http://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-ProxyMesh-IP: 1.2.3.4\r\n"
    b"\r\n",
    b"GET http://[::1]:81/ HTTP/1.0\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n"
    b"Proxy-Authorization: Basic YTpi\r\nX-ProxyMesh-Timeout: 5\r\n\r\n",
]
TOKENS = [b"\r\n", b"\r", b"\n", b" ", b"\t", b":", b"\x00", b"\xff", b"Host: y\r\n",
          b"Content-Length: 3\r\n", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1", b"[",
          b"]", b"%", b"@", b"Proxy-Connection: x\r\n", b"X-ProxyMesh-Country: de\r\n", b"-1",
          b"65536", b"CONNECT ", b"\r\n ", b"\r\n\r\n", b"chunked", b",", b"0x"]


def mutated_requests() -> st.SearchStrategy[bytes]:
    return mutations(VALID, TOKENS)


@given(st.one_of(mutated_requests(), st.binary(max_size=512)))
def test_parser_and_prepare_request_never_fail(data: bytes) -> None:
    for head in parse_heads(data):
        check_prepared(head, prepare_request(head))


TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
FIELD_VALUE_CTL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

header_names = st.one_of(
    st.sampled_from([b"Host", b"host", b"Content-Length", b"Transfer-Encoding", b"Connection",
                     b"Proxy-Authorization", b"proxy-connection", b"X-ProxyMesh-IP",
                     b"X-ProxyMesh-Not-IP", b"X-ProxyMesh-Timeout", b"X-ProxyMesh-Country",
                     b"Keep-Alive", b"TE", b"Upgrade", b"Expect", b"X-Other"]),
    st.binary(min_size=1, max_size=12),
)


@given(
    method=st.sampled_from([b"GET", b"POST", b"CONNECT", b"HEAD", b"PUT", b"DELETE"]),
    target=st.one_of(st.binary(max_size=80),
                     st.builds(lambda h, p, rest: b"http://" + h + p + rest,
                               st.sampled_from([b"a.example", b"127.0.0.1", b"[::1]", b"",
                                                b"[v]", b"x y"]),
                               st.sampled_from([b"", b":80", b":0", b":65536", b":", b":a"]),
                               st.binary(max_size=20))),
    version=st.sampled_from(["1.1", "1.0", "0.9", "2.0"]),
    headers=st.lists(st.tuples(header_names, st.binary(max_size=40)), max_size=12),
)
def test_prepare_request_over_any_head(method: bytes, target: bytes, version: str,
                                       headers: list[tuple[bytes, bytes]]) -> None:
    """Heads the parser would never produce too (the pure function must hold alone)."""
    head = RequestHead(method, target, version, headers, keep_alive=True)
    result = prepare_request(head)
    # Names that are not RFC 9110 tokens and values with control bytes are the parser's to
    # refuse (llhttp does); skip those for the framing checks.
    unparsable = any(not TOKEN.fullmatch(n) or FIELD_VALUE_CTL.search(v) for n, v in headers)
    if isinstance(result, PreparedRequest) and not result.connect and unparsable:
        return
    check_prepared(head, result)


# ---- credentials ----------------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_proxy_basic_parser_takes_any_bytes(value: bytes) -> None:
    parsed = parse_basic(value)
    if parsed is not None:
        username, password = parsed
        assert username and ":" not in username
        assert isinstance(password, str)


@given(st.binary(max_size=200))
def test_proxy_basic_parser_takes_any_decoded_credentials(raw: bytes) -> None:
    parsed = parse_basic(b"Basic " + base64.b64encode(raw))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        assert parsed is None  # not UTF-8: refused, never guessed at
        return
    username, colon, password = text.partition(":")
    assert parsed == ((username, password) if colon and username else None)


@given(st.text(max_size=300))
def test_basic_parser_takes_any_text(value: str) -> None:
    parsed = parse_basic(value)
    assert parsed is None or all(isinstance(part, str) for part in parsed)


@given(st.lists(st.binary(max_size=120), min_size=1, max_size=8))
def test_authenticate_takes_any_header(values: list[bytes]) -> None:
    directory = AccountDirectory(BanPolicy(max_failures=1_000_000))
    for value in values:
        result = directory.authenticate("127.0.0.1", value, 1000.0)
        assert isinstance(result, ProxyError | CredentialCheck)
        if isinstance(result, ProxyError):
            assert result.status == 407 and result.challenge


# ---- a live node ----------------------------------------------------------------------------


async def _no_dns(resolver: Resolver, host: str, port: int) -> tuple[str, ...]:
    """Names never leave the machine: only `localhost` resolves."""
    if host != "localhost":
        raise OSError(f"{host}: no DNS in the fuzz run")
    return ("127.0.0.1",)


@pytest.fixture
def fuzz_env(start_env: Callable[..., Env], monkeypatch: pytest.MonkeyPatch) -> Env:
    """The node may only ever connect to loopback addresses, whatever the fuzzer writes."""
    env = start_env(header_timeout=1.0, quota_check_interval=0.1)
    env.account("alice")
    env.sync()
    real_connect = dial_module.connect_socket
    monkeypatch.setattr(Resolver, "resolve", _no_dns)

    async def loopback_only(loop: Any, ip: str, port: int, egress: str | None,
                            within: float, **options: Any) -> socket.socket:
        if not (ip.startswith("127.") or ip == "::1"):
            raise OSError(f"fuzz guard: {ip} is not loopback")
        return await real_connect(loop, ip, port, egress, within, **options)

    monkeypatch.setattr(dial_module, "connect_socket", loopback_only)
    return env


def _to_origin(data: bytes, env: Env) -> bytes:
    credentials = b"Proxy-Authorization: " + basic().encode() + b"\r\n"
    origin = b"127.0.0.1:%d" % env.origins.http
    return (data.replace(b"127.0.0.1:8080", origin).replace(b"example.com:443", origin)
            .replace(b"example.com", origin).replace(b"Host: x\r\n", b"Host: x\r\n" + credentials))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_requests())
def test_a_live_node_answers_or_closes(fuzz_env: Env, data: bytes) -> None:
    with open_from(fuzz_env.address(), fresh_source(), timeout=5) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(_to_origin(data, fuzz_env))
            sock.shutdown(socket.SHUT_WR)
        received = b""
        with contextlib.suppress(OSError):
            while piece := sock.recv(65536):
                received += piece
                if len(received) > 1_000_000:
                    break
    assert received == b"" or received.startswith(b"HTTP/1."), received[:100]
    settle(fuzz_env, within=5)
