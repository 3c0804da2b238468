"""Request heads: framing checks, target parsing, and the head sent upstream.

Pure: takes the parsed head (method, target, version, raw header pairs) and yields a
`PreparedRequest` or a `ProxyError`. Everything a client must not leak upstream is
removed here: `Proxy-*` and `X-ProxyMesh-*` headers, hop-by-hop headers (and those the
Connection header names), and the client's Host (replaced by the target's authority).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.headers import DIGITS, FRAMING, HOP_BY_HOP
from meshproxy.proxy.core.options import NO_OPTIONS, OptionError, RequestOptions, parse_options
from meshproxy.proxy.core.target import Target, TargetError, parse_absolute, parse_authority

# Never forwarded as they came: hop-by-hop, framing and Host (each re-added as validated).
_REMOVED: Final = HOP_BY_HOP | FRAMING | {b"trailer", b"host"}
# Cheap pre-check: only names starting with these letters can need removal.
_SUSPECT_FIRST: Final = frozenset(b"CcHhKkPpTtUuXx")


class Body(IntEnum):
    NONE = 0
    LENGTH = 1
    CHUNKED = 2


@dataclass(slots=True)
class RequestHead:
    """What the HTTP parser saw; header names and values exactly as received."""

    method: bytes
    target: bytes
    version: str  # "1.1" or "1.0"
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool


@dataclass(slots=True)
class PreparedRequest:
    method: bytes
    target: Target
    connect: bool
    upstream_head: bytes  # the head to send upstream (b"" for CONNECT)
    authorization: bytes | None
    options: RequestOptions
    body: Body
    content_length: int
    keep_alive: bool  # the client wants the connection kept
    expects_continue: bool


# Enum members as module globals: on Python 3.11 `Body.LENGTH` is a lookup through the enum's
# metaclass (about 85 ns), a global about 12; these are read several times a request.
_BODY_NONE: Final = Body.NONE
_BODY_LENGTH: Final = Body.LENGTH
_BODY_CHUNKED: Final = Body.CHUNKED


def _framing(
    lengths: list[bytes], codings: list[bytes], version: str
) -> tuple[Body, int] | ProxyError:
    if codings:
        if lengths:
            return errors.bad_request("both Content-Length and Transfer-Encoding")
        if version != "1.1":
            return errors.bad_request("Transfer-Encoding in an HTTP/1.0 request")
        tokens = [t.strip().lower() for c in codings for t in c.split(b",")]
        if tokens != [b"chunked"]:
            return errors.not_implemented("unsupported Transfer-Encoding")
        return _BODY_CHUNKED, 0
    if lengths:
        values = {v.strip() for v in lengths}
        if len(values) != 1:
            return errors.bad_request("conflicting Content-Length headers")
        value = values.pop()
        if not DIGITS.fullmatch(value):
            return errors.bad_request("invalid Content-Length")
        length = int(value)
        return _BODY_LENGTH, length
    return _BODY_NONE, 0


def prepare_request(
    head: RequestHead, *, forwarded_for: str | None = None
) -> PreparedRequest | ProxyError:
    """Validate `head` and build what goes upstream. `forwarded_for`: add Via/X-Forwarded-For."""
    if head.version not in ("1.1", "1.0"):  # HTTP/0.9 heads parse, but are not served
        return errors.version_not_supported()
    connect = head.method == b"CONNECT"
    try:
        target = parse_authority(head.target) if connect else parse_absolute(head.target)
    except TargetError as bad_target:  # apart from bad_option: compiled, a name has one type
        return errors.bad_request(str(bad_target))
    kept: list[tuple[bytes, bytes]] = []
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection_tokens: set[bytes] = set()
    option_pairs: list[tuple[str, bytes]] = []
    authorization: bytes | None = None
    expects_continue = False
    hosts = 0
    for name, value in head.headers:
        if name[0] not in _SUSPECT_FIRST:
            if name[0] in b"Ee" and name.lower() == b"expect":
                expects_continue = value.strip().lower() == b"100-continue"
            kept.append((name, value))
            continue
        lower = name.lower()
        if lower.startswith(b"proxy-"):
            if lower == b"proxy-authorization":
                authorization = value
            continue
        if lower.startswith(b"x-proxymesh-"):
            option_pairs.append((lower[12:].decode("latin-1"), value))
            continue
        if lower in _REMOVED:
            if lower == b"content-length":
                lengths.append(value)
            elif lower == b"transfer-encoding":
                codings.append(value)
            elif lower == b"connection":
                connection_tokens.update(t.strip().lower() for t in value.split(b","))
            elif lower == b"host":
                hosts += 1
            continue
        kept.append((name, value))
    if hosts > 1:  # RFC 9112 3.2: two origins could each read a different one
        return errors.bad_request("more than one Host header")
    body, length = _BODY_NONE, 0
    if lengths or codings:
        framing = _framing(lengths, codings, head.version)
        if isinstance(framing, ProxyError):
            return framing
        body, length = framing
    try:
        options = parse_options(option_pairs) if option_pairs else NO_OPTIONS
    except OptionError as bad_option:
        return errors.bad_option(str(bad_option))
    if connect:
        upstream_head = b""
    else:
        connection_tokens -= _REMOVED  # those are gone already ("keep-alive" mostly)
        if connection_tokens:
            kept = [(n, v) for n, v in kept if n.lower() not in connection_tokens]
        upstream_head = _upstream_head(head, target, kept, body, length, forwarded_for)
    return PreparedRequest(  # positional: this runs for every request
        head.method,
        target,
        connect,
        upstream_head,
        authorization,
        options,
        body,
        length,
        head.keep_alive and head.version == "1.1",
        expects_continue,
    )


def _upstream_head(
    head: RequestHead,
    target: Target,
    kept: list[tuple[bytes, bytes]],
    body: Body,
    length: int,
    forwarded_for: str | None,
) -> bytes:
    # An HTTP/1.0 client cannot read chunked responses: ask the origin in 1.0 too.
    version = b" HTTP/1.1\r\nHost: " if head.version == "1.1" else b" HTTP/1.0\r\nHost: "
    parts = [head.method, b" ", target.path, version, target.authority(80), b"\r\n"]
    for name, value in kept:
        parts += (name, b": ", value, b"\r\n")
    if body is _BODY_LENGTH:
        parts += (b"Content-Length: ", str(length).encode("ascii"), b"\r\n")
    elif body is _BODY_CHUNKED:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    if head.version != "1.1":
        parts.append(b"Connection: close\r\n")
    if forwarded_for is not None:
        parts += (b"Via: 1.1 meshproxy\r\nX-Forwarded-For: ", forwarded_for.encode(), b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
