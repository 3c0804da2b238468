"""Input validation for every API parameter, in one place (the shape of Django forms).

A form takes the raw string mapping of a request (query string or url-encoded body) and
yields either `cleaned` values or `errors`: field name -> list of messages, which is
exactly the JSON body of a 400 answer. Errors not tied to one field go under "__all__".

Bytes that are not UTF-8 reach a form as lone surrogates (the parsers decode with
"surrogateescape"), so such a value is refused here, under its own field's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from meshproxy.domain.addresses import normalise_ip

NON_FIELD_ERRORS = "__all__"
REQUIRED = "This field is required."
NOT_UTF8 = "This value is not valid UTF-8 text."

USERNAME_MAX = 30
PASSWORD_MAX = 128
NAME_MAX = 20
EMAIL_MAX = 255
HOSTNAME_MAX = 253

_USERNAME_RE = re.compile(r"[A-Za-z0-9.@+\-_]+")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")
_LABEL_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# What "surrogateescape" makes of each byte that is not part of valid UTF-8.
_ESCAPED_BYTE_RE = re.compile("[\udc80-\udcff]")


class ValidationError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _max_length(value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValidationError(
            f"Ensure this value has at most {limit} characters (it has {len(value)})."
        )


def clean_username(value: str) -> str:
    _max_length(value, USERNAME_MAX)
    if not _USERNAME_RE.fullmatch(value):
        raise ValidationError(
            "Enter a valid username. This value may contain only letters, numbers, "
            "and ./@/+/-/_ characters."
        )
    return value


def clean_account_name(value: str) -> str:
    """The name of an account that should exist. A name no account can have (too long, a
    character outside the username rules) is not a form error: it names no account, so the
    lookup answers 404 "Sub-account not found." as the spec says."""
    return value


def clean_password(value: str) -> str:
    _max_length(value, PASSWORD_MAX)
    return value


def _text(limit: int) -> Callable[[str], str]:
    def clean(value: str) -> str:
        value = value.strip()
        _max_length(value, limit)
        return value

    return clean


def clean_email(value: str) -> str:
    value = value.strip()
    _max_length(value, EMAIL_MAX)
    if value and not _EMAIL_RE.fullmatch(value):
        raise ValidationError("Enter a valid email address.")
    return value


LIMIT_MAX = 10**12  # GB; far beyond any real quota, small enough for a BIGINT of bytes
PAGE_MAX = 1000


def _whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    def clean(value: str) -> int:
        text = value.strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValidationError("Enter a whole number.")
        number = int(text)
        if number < minimum:
            raise ValidationError(f"Ensure this value is greater than or equal to {minimum}.")
        if number > maximum:
            raise ValidationError(f"Ensure this value is less than or equal to {maximum}.")
        return number

    return clean


clean_limit = _whole_number(0, LIMIT_MAX)  # whole GB, 0 (no limit) or more


def clean_ip(value: str) -> str:
    """A single IPv4 or IPv6 address, normalised (compressed IPv6, v4-mapped unwrapped)."""
    address = normalise_ip(value)
    if address is None:
        raise ValidationError("Enter a valid IPv4 or IPv6 address.")
    return address


def clean_hostname(value: str) -> str:
    """A DNS name, lower-cased, without a trailing dot."""
    name = value.strip().lower().rstrip(".")
    if not name:
        raise ValidationError(REQUIRED)
    _max_length(name, HOSTNAME_MAX)
    labels = name.split(".")
    if not all(_LABEL_RE.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValidationError("Enter a valid hostname.")
    return name


def clean_proxy_name(value: str) -> str:
    name = value.strip().lower()
    if not name:
        raise ValidationError(REQUIRED)
    _max_length(name, HOSTNAME_MAX + 6)
    return name


@dataclass(frozen=True)
class Field:
    clean: Callable[[str], Any]
    required: bool = False
    # What an empty value means when the field is not required: None = "leave unchanged"
    # (the field is dropped from `cleaned`), otherwise the value to store.
    empty: Any = None
    # For the API's OpenAPI document: what the field means, and its JSON-schema shape.
    description: str = ""
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


class Form:
    """Validate `data`; see `cleaned` and `errors` after construction."""

    fields: ClassVar[dict[str, Field]] = {}

    def __init__(self, data: Mapping[str, str]) -> None:
        self.cleaned: dict[str, Any] = {}
        self.errors: dict[str, list[str]] = {}
        for name, spec in self.fields.items():
            raw = data.get(name)
            if raw is None or raw == "":
                if spec.required:
                    self.add_error(name, REQUIRED)
                elif raw == "" and spec.empty is not None:
                    self.cleaned[name] = spec.empty
                continue
            if "\x00" in raw:
                self.add_error(name, "Null characters are not allowed.")
                continue
            if _ESCAPED_BYTE_RE.search(raw):
                self.add_error(name, NOT_UTF8)
                continue
            try:
                self.cleaned[name] = spec.clean(raw)
            except ValidationError as error:
                self.add_error(name, error.message)

    @property
    def is_valid(self) -> bool:
        return not self.errors

    def add_error(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)


def _string(max_length: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **extra}


def _integer(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


_USERNAME_SCHEMA = _string(USERNAME_MAX, minLength=1, pattern=f"^{_USERNAME_RE.pattern}$")
# What clean_email accepts: empty, or one @ between non-blank parts (spaces around stripped).
_EMAIL_SCHEMA = _string(EMAIL_MAX, pattern=rf"^\s*({_EMAIL_RE.pattern})?\s*$")
SUB_ACCOUNT_USERNAME = "the username of a sub-account"


def _username(description: str, *, required: bool) -> Field:
    return Field(
        clean_username, required=required, description=description, schema=_USERNAME_SCHEMA
    )


def _account_name(description: str, *, required: bool) -> Field:
    """A username that names an existing account: any other text is a 404, not a 400."""
    return Field(
        clean_account_name,
        required=required,
        description=f"{description}; a name no account has is a 404",
        schema={"type": "string", "minLength": 1},
    )


def _limit(what: str) -> Field:
    return Field(
        clean_limit,
        description=f"whole GB to restrict {what} bandwidth usage; 0 means no limit",
        schema=_integer(0, LIMIT_MAX),
    )


_SUB_ACCOUNT_FIELDS: dict[str, Field] = {
    "username": _username(
        f"up to {USERNAME_MAX} letters, digits and . @ + - _ (globally unique)", required=True
    ),
    "password": Field(
        clean_password,
        description=f"up to {PASSWORD_MAX} characters; absent or empty: unchanged",
        schema=_string(PASSWORD_MAX, format="password"),
    ),
    # An empty name or email clears it (design: "an empty first_name ... clears it").
    "first_name": Field(
        _text(NAME_MAX), empty="", description="empty clears it", schema=_string(NAME_MAX)
    ),
    "last_name": Field(
        _text(NAME_MAX), empty="", description="empty clears it", schema=_string(NAME_MAX)
    ),
    "email": Field(
        clean_email, empty="", description="empty clears it", schema=_EMAIL_SCHEMA
    ),
    "monthly_limit": _limit("monthly"),
    "total_limit": _limit("total"),
}


class SubAccountForm(Form):
    """POST /api/sub/create/: absent fields are absent from `cleaned`."""

    fields = _SUB_ACCOUNT_FIELDS


class SubAccountEditForm(Form):
    """POST /api/sub/edit/: create's fields, but `username` names the account to change, so
    a name no account can have is a 404 like any unknown one."""

    fields = {
        **_SUB_ACCOUNT_FIELDS,
        "username": _account_name(SUB_ACCOUNT_USERNAME, required=True),
    }


class UsernameForm(Form):
    fields = {"username": _account_name(SUB_ACCOUNT_USERNAME, required=True)}


_OF_SUB_ACCOUNT = "a sub-account's username, to act on it instead of your own account"


class OptionalUsernameForm(Form):
    fields = {"username": _account_name(_OF_SUB_ACCOUNT, required=False)}


class IpForm(Form):
    fields = {
        "ip": Field(
            clean_ip,
            required=True,
            description="an IPv4 or IPv6 address (stored normalised)",
            schema={"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
        ),
        "username": _account_name(_OF_SUB_ACCOUNT, required=False),
    }


class HostnameForm(Form):
    fields = {
        "domain": Field(
            clean_hostname,
            required=True,
            description="a DNS hostname (stored lower-case, without a trailing dot)",
            schema=_string(HOSTNAME_MAX, format="hostname"),
        ),
        "username": _account_name(_OF_SUB_ACCOUNT, required=False),
    }


class ProxyForm(Form):
    fields = {
        "proxy": Field(
            clean_proxy_name,
            required=True,
            description="the proxy as `host`, `host.domain` or `host.domain:port`",
            schema=_string(HOSTNAME_MAX + 6),
        )
    }


class PageForm(Form):
    """One page of a listing (meshproxy's GET /api/sub/list/)."""

    fields = {
        "offset": Field(
            _whole_number(0, LIMIT_MAX),
            description="how many entries to skip (default 0)",
            schema=_integer(0, LIMIT_MAX),
        ),
        "limit": Field(
            _whole_number(1, PAGE_MAX),
            description=f"page size, 1-{PAGE_MAX} (default 100)",
            schema=_integer(1, PAGE_MAX),
        ),
    }


STATS_DAYS_MAX = 366


class StatsForm(Form):
    """Whose request statistics, and of how many days (meshproxy's GET /api/sub/stats/)."""

    fields = {
        "username": _account_name(_OF_SUB_ACCOUNT, required=False),
        "days": Field(
            _whole_number(1, STATS_DAYS_MAX),
            description=f"how many days up to today (UTC), 1-{STATS_DAYS_MAX} (default 30)",
            schema=_integer(1, STATS_DAYS_MAX),
        ),
    }
