"""A request's raw parameters: the query string for GET, the form-encoded body for POST.

POST parameters are read from the body only, as the spec says (query strings end up in
logs; a password must not). Repeated keys: the last one wins.

Bytes that are not UTF-8 are kept as lone surrogates ("surrogateescape"): the form refuses
them under the field's own name (domain/forms.py), like any other bad value.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request

from meshproxy.control.errors import ControlError, FormInvalid
from meshproxy.domain.forms import NON_FIELD_ERRORS

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 100
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


class BodyTooLarge(ControlError):
    status = 413


def _malformed(message: str) -> FormInvalid:
    return FormInvalid.one(NON_FIELD_ERRORS, message)


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _urlencoded(raw: bytes) -> dict[str, str]:
    text = raw.decode("utf-8", "surrogateescape")
    try:
        return dict(
            parse_qsl(
                text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="surrogateescape"
            )
        )
    except ValueError:  # more than MAX_FIELDS fields
        raise _malformed("Malformed form data.") from None


async def form_body(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == MULTIPART:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY_BYTES)
        data: dict[str, str] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                raise _malformed("File uploads are not accepted.")
            data[key] = value
        return data
    body = await _body(request)
    if content_type not in ("", URLENCODED) and body:
        raise _malformed(f"Send parameters as {URLENCODED} or {MULTIPART}.")
    return _urlencoded(body)


def query(request: Request) -> dict[str, str]:
    data = _urlencoded(request.scope.get("query_string", b""))
    data.update(request.path_params)
    return data
