"""Response heads from upstream: framing, and the head the client gets.

Responses are parsed for framing only (the body is forwarded as received). The head is
rewritten once: hop-by-hop headers and any `X-ProxyMesh-*` an origin sent are dropped,
`X-ProxyMesh-IP` (and `X-ProxyMesh-IP-Not-Found`) are added, and `Connection: close`
when the client connection will end after this response.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from meshproxy.proxy import errors
from meshproxy.proxy.errors import ProxyError

MAX_HEAD = 64 * 1024
_STATUS_RE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(rb"[0-9]{1,18}")
_DROP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"upgrade", b"te"})


class Framing(IntEnum):
    NONE = 0  # HEAD, 1xx, 204, 304: the head is the whole message
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    head: bytes  # rewritten, ending with the blank line
    framing: Framing
    length: int  # for Framing.LENGTH
    upstream_reusable: bool  # the origin keeps the connection (given a complete body)
    client_keep: bool  # the client connection stays open after this response


def interim(status_line: bytes) -> int | None:
    """The status of a 1xx head (other than 101), else None."""
    match = _STATUS_RE.match(status_line)
    if match is None:
        return None
    status = int(match.group(2))
    return status if 100 <= status < 200 and status != 101 else None


def parse_response_head(
    raw: bytes,
    *,
    head_request: bool,
    client_keep_alive: bool,
    added: bytes,
) -> ResponseHead | ProxyError:
    """`raw`: the head without its final CRLFCRLF. `added`: CRLF-ended lines to insert."""
    lines = raw.split(b"\r\n")
    match = _STATUS_RE.fullmatch(lines[0])
    if match is None:
        return errors.bad_response("malformed upstream status line")
    minor, status = match.group(1), int(match.group(2))
    if status == 101:
        return errors.bad_response("upstream switched protocols without being asked")
    kept = [lines[0]]
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection: list[bytes] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN_RE.fullmatch(name) or b"\r" in value or b"\n" in value:
            return errors.bad_response("malformed upstream header")
        lower = name.lower()
        if lower in _DROP or lower.startswith(b"x-proxymesh-"):
            if lower == b"connection":
                connection.extend(t.strip().lower() for t in value.split(b","))
            continue
        if lower == b"content-length":
            lengths.append(value.strip())
        elif lower == b"transfer-encoding":
            codings.append(value)
        kept.append(line)
    if connection:
        named = {t for t in connection if t not in (b"transfer-encoding", b"content-length")}
        if named:
            kept = [kept[0]] + [k for k in kept[1:] if k.partition(b":")[0].lower() not in named]
    reusable = minor == b"1" and b"close" not in connection
    length = 0
    if head_request or status < 200 or status in (204, 304):
        framing = Framing.NONE
    elif codings:
        if lengths:
            return errors.bad_response("upstream sent both Content-Length and Transfer-Encoding")
        last = codings[-1].split(b",")[-1].strip().lower()
        framing = Framing.CHUNKED if last == b"chunked" else Framing.UNTIL_CLOSE
    elif lengths:
        if len(set(lengths)) != 1 or not _DIGITS.fullmatch(lengths[0]):
            return errors.bad_response("invalid upstream Content-Length")
        framing, length = Framing.LENGTH, int(lengths[0])
        if not length:
            framing = Framing.NONE
    else:
        framing = Framing.UNTIL_CLOSE
    if framing is Framing.UNTIL_CLOSE:
        reusable = False
    client_keep = client_keep_alive and framing is not Framing.UNTIL_CLOSE
    tail = b"\r\n" + added + (b"\r\n" if client_keep else b"Connection: close\r\n\r\n")
    return ResponseHead(
        status=status,
        head=b"\r\n".join(kept) + tail,
        framing=framing,
        length=length,
        upstream_reusable=reusable,
        client_keep=client_keep,
    )
