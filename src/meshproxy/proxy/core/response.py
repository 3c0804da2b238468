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
from typing import Final

from meshproxy.proxy.core import errors
from meshproxy.proxy.core.errors import ProxyError
from meshproxy.proxy.core.headers import DIGITS, FRAMING, HOP_BY_HOP

MAX_HEAD: Final = 64 * 1024
# Possessive quantifiers (++, *+): a field's name ends at its colon and its value at CRLF, so
# nothing is ever worth backtracking into; they halve the cost of the checks.
_STATUS_RE: Final = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*+)?")
_FIELDS_RE: Final = re.compile(rb"(?:\r\n[!#$%&'*+\-.^_`|~0-9A-Za-z]++:[^\r\n]*+)*+")
_DROPPED: Final = HOP_BY_HOP | FRAMING
_SPECIAL_RE: Final = re.compile(
    rb"\r\n(" + b"|".join(sorted(_DROPPED)) + rb"|x-proxymesh-[^:]*+):([^\r\n]*+)"
)


class Framing(IntEnum):
    NONE = 0  # HEAD, 1xx, 204, 304: the head is the whole message
    LENGTH = 1
    CHUNKED = 2
    UNTIL_CLOSE = 3


# Enum members as module globals: on Python 3.11 `Framing.LENGTH` is a lookup through the
# enum's metaclass (about 85 ns), a global about 12; these are read several times a request.
_FRAMING_NONE: Final = Framing.NONE
_FRAMING_LENGTH: Final = Framing.LENGTH
_FRAMING_CHUNKED: Final = Framing.CHUNKED
_FRAMING_UNTIL_CLOSE: Final = Framing.UNTIL_CLOSE


@dataclass(slots=True)  # not frozen: one per response, and frozen dataclasses build slowly
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
    split = raw.find(b"\r\n")
    status_line, fields = (raw, b"") if split < 0 else (raw[:split], raw[split:])
    match = _STATUS_RE.fullmatch(status_line)
    if match is None:
        return errors.bad_response("malformed upstream status line")
    minor, status = match.group(1), int(match.group(2))
    if status == 101:
        return errors.bad_response("upstream switched protocols without being asked")
    if not _FIELDS_RE.fullmatch(fields):
        return errors.bad_response("malformed upstream header")
    # One pass over the lower-cased block finds the few headers that matter; the rest
    # is copied as it came.
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection: list[bytes] = []
    kept: list[bytes] = [status_line]
    copied = 0
    for special in _SPECIAL_RE.finditer(fields.lower()):
        name, value = special.groups()
        if name == b"content-length":
            lengths.append(value.strip())
        elif name == b"transfer-encoding":
            codings.append(value)
        else:  # hop-by-hop or X-ProxyMesh-*: dropped
            if name == b"connection":  # mostly one token ("keep-alive")
                if b"," in value:
                    connection.extend([t.strip() for t in value.split(b",")])
                else:
                    connection.append(value.strip())
            start, copied_to = special.span()
            kept.append(fields[copied:start])
            copied = copied_to
    kept.append(fields[copied:])
    if connection and not _DROPPED.issuperset(connection):
        # Headers the origin named in Connection are hop-by-hop too.
        named = {t for t in connection if t not in _DROPPED}
        lines = b"".join(kept).split(b"\r\n")
        kept = [
            b"\r\n".join(
                [lines[0]] + [k for k in lines[1:] if k.partition(b":")[0].lower() not in named]
            )
        ]
    reusable = minor == b"1" and b"close" not in connection
    length = 0
    if head_request or status < 200 or status in (204, 304):
        framing = _FRAMING_NONE
    elif codings:
        if lengths:
            return errors.bad_response("upstream sent both Content-Length and Transfer-Encoding")
        last = codings[-1].split(b",")[-1].strip().lower()
        framing = _FRAMING_CHUNKED if last == b"chunked" else _FRAMING_UNTIL_CLOSE
    elif lengths:
        value = lengths[0]
        if (len(lengths) > 1 and len(set(lengths)) != 1) or not DIGITS.fullmatch(value):
            return errors.bad_response("invalid upstream Content-Length")
        framing, length = _FRAMING_LENGTH, int(value)
        if not length:
            framing = _FRAMING_NONE
    else:
        framing = _FRAMING_UNTIL_CLOSE
    if framing is _FRAMING_UNTIL_CLOSE:
        reusable = False
    client_keep = client_keep_alive and framing is not _FRAMING_UNTIL_CLOSE
    kept += (b"\r\n", added, b"\r\n" if client_keep else b"Connection: close\r\n\r\n")
    return ResponseHead(status, b"".join(kept), framing, length, reusable, client_keep)
