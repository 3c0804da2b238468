"""Request heads without sockets: targets, framing, header removal, options."""

from __future__ import annotations

import pytest

from meshproxy.proxy.core.errors import ProxyError, render
from meshproxy.proxy.core.options import OptionError, RequestOptions, parse_options
from meshproxy.proxy.core.request import Body, PreparedRequest, RequestHead, prepare_request
from meshproxy.proxy.core.target import TargetError, parse_absolute, parse_authority


def head(
    target: bytes = b"http://example.com/a?b=1",
    headers: list[tuple[bytes, bytes]] | None = None,
    method: bytes = b"GET",
    version: str = "1.1",
) -> RequestHead:
    return RequestHead(method, target, version, headers or [], keep_alive=version == "1.1")


def prepared(h: RequestHead, **kwargs: str) -> PreparedRequest:
    result = prepare_request(h, **kwargs)
    assert isinstance(result, PreparedRequest), result
    return result


def refused(h: RequestHead) -> ProxyError:
    result = prepare_request(h)
    assert isinstance(result, ProxyError), result
    return result


@pytest.mark.parametrize(
    ("target", "host", "port", "path"),
    [
        (b"http://example.com", "example.com", 80, b"/"),
        (b"HTTP://Example.COM:8080/x?y", "example.com", 8080, b"/x?y"),
        (b"http://example.com?q=1", "example.com", 80, b"/?q=1"),
        (b"http://[::1]:81/p#frag", "::1", 81, b"/p"),
        (b"http://127.0.0.1:65535/", "127.0.0.1", 65535, b"/"),
    ],
)
def test_absolute_targets(target: bytes, host: str, port: int, path: bytes) -> None:
    parsed = parse_absolute(target)
    assert (parsed.host, parsed.port, parsed.path) == (host, port, path)


@pytest.mark.parametrize(
    "target",
    [
        b"/relative",
        b"https://example.com/",
        b"ftp://example.com/",
        b"http://example.com:65536/",  # must not wrap to port 0
        b"http://example.com:99999999999/",
        b"http://example.com:-1/",
        b"http://example.com:+80/",
        b"http://example.com:/",
        b"http://user:pw@example.com/",
        b"http://exa mple.com/",
        b"http://[::1/",
        b"http://[zz]:80/",
        b"http:///path",
    ],
)
def test_bad_absolute_targets(target: bytes) -> None:
    with pytest.raises(TargetError):
        parse_absolute(target)


def test_authority_form_needs_a_port() -> None:
    assert parse_authority(b"example.com:443").port == 443
    assert parse_authority(b"[::1]:8443").host == "::1"
    for bad in (b"example.com", b"example.com:0", b"example.com:65536", b"[::1]"):
        with pytest.raises(TargetError):
            parse_authority(bad)


def test_upstream_head_strips_proxy_and_hop_by_hop_headers() -> None:
    request = prepared(
        head(
            headers=[
                (b"Host", b"spoofed.example"),
                (b"Proxy-Authorization", b"Basic YTpi"),
                (b"Proxy-Connection", b"keep-alive"),
                (b"X-ProxyMesh-Country", b"de"),
                (b"x-proxymesh-whatever", b"1"),
                (b"Connection", b"keep-alive, X-Secret"),
                (b"X-Secret", b"hop"),
                (b"Keep-Alive", b"timeout=5"),
                (b"TE", b"trailers"),
                (b"Trailer", b"X-T"),
                (b"Upgrade", b"websocket"),
                (b"Accept", b"*/*"),
                (b"Expect", b"100-continue"),
            ]
        )
    )
    assert request.authorization == b"Basic YTpi"
    assert request.options.country == "DE"
    assert request.expects_continue
    assert request.upstream_head == (
        b"GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nExpect: 100-continue\r\n\r\n"
    )


def test_forwarded_headers_only_when_configured() -> None:
    request = prepared(head(), forwarded_for="10.1.2.3")
    assert b"Via: 1.1 meshproxy\r\nX-Forwarded-For: 10.1.2.3\r\n" in request.upstream_head


def test_http10_request_goes_upstream_as_http10_and_closes() -> None:
    request = prepared(head(version="1.0"))
    assert request.upstream_head.startswith(b"GET /a?b=1 HTTP/1.0\r\n")
    assert b"Connection: close\r\n" in request.upstream_head
    assert not request.keep_alive


def test_body_framing() -> None:
    length = prepared(head(method=b"POST", headers=[(b"Content-Length", b"12")]))
    assert (length.body, length.content_length) == (Body.LENGTH, 12)
    assert b"Content-Length: 12\r\n" in length.upstream_head
    chunked = prepared(head(method=b"POST", headers=[(b"Transfer-Encoding", b"chunked")]))
    assert chunked.body is Body.CHUNKED
    assert b"Transfer-Encoding: chunked\r\n" in chunked.upstream_head


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([(b"Content-Length", b"5"), (b"Transfer-Encoding", b"chunked")], 400),
        ([(b"Content-Length", b"+5")], 400),
        ([(b"Content-Length", b"0x5")], 400),
        ([(b"Content-Length", b"5"), (b"Content-Length", b"6")], 400),
        ([(b"Transfer-Encoding", b"gzip")], 501),
        ([(b"Transfer-Encoding", b"chunked, chunked")], 501),
        ([(b"Transfer-Encoding", b"chunked"), (b"Transfer-Encoding", b"chunked")], 501),
        ([(b"X-ProxyMesh-Timeout", b"soon")], 400),
        ([(b"X-ProxyMesh-Country", b"Germany")], 400),
    ],
)
def test_refused_heads(headers: list[tuple[bytes, bytes]], status: int) -> None:
    assert refused(head(method=b"POST", headers=headers)).status == status


def test_transfer_encoding_in_http10_is_refused() -> None:
    assert refused(head(version="1.0", headers=[(b"Transfer-Encoding", b"chunked")])).status == 400


def test_connect_head() -> None:
    request = prepared(head(b"example.com:443", method=b"CONNECT"))
    assert request.connect and request.upstream_head == b""
    assert refused(head(b"http://example.com/", method=b"CONNECT")).status == 400


def test_options() -> None:
    options = parse_options(
        [
            ("ip", b" 127.0.0.5 "),
            ("not-ip", b"127.0.0.2, junk ,::ffff:127.0.0.3"),
            ("timeout", b"2.5"),
            ("country", b"fr"),
        ]
    )
    # Not-IP keeps what is not an address as a name (an upstream egress's, docs/egress.md).
    excluded = frozenset({"127.0.0.2", "junk", "127.0.0.3"})
    assert options == RequestOptions("FR", "127.0.0.5", excluded, 2.5)
    assert parse_options([("prefer-ip", b"not-an-ip")]).ip == "not-an-ip"
    assert parse_options([("timeout", b"100000")]).timeout == 600.0
    for bad in (b"0", b"-1", b"nan", b"inf"):
        with pytest.raises(OptionError):
            parse_options([("timeout", bad)])


def test_error_rendering() -> None:
    error = ProxyError(407, 'bad "creds"\r\nInjected: yes', "http_request_denied", challenge=True)
    data = render(error, realm="mesh", close=False, extra_headers=b"X-ProxyMesh-IP: 1.2.3.4\r\n")
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    lines = head_bytes.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 407 Proxy Authentication Required"
    assert b'X-ProxyMesh-Error: bad "creds"??Injected: yes' in lines
    status = b'Proxy-Status: meshproxy; error=http_request_denied; details="bad \\"creds\\"??'
    assert status + b'Injected: yes"' in lines
    assert b'Proxy-Authenticate: Basic realm="mesh"' in lines
    assert b"X-ProxyMesh-IP: 1.2.3.4" in lines
    assert b"Connection: close" not in lines
    assert body.count(b"\n") == 1 and body.startswith(b"407 ")
    assert f"Content-Length: {len(body)}".encode() in lines
