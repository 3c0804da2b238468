"""Usage alerts, the pure part: which thresholds a usage has crossed, the notice's JSON
body, its HMAC signature, and when a failed delivery is tried again."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from meshproxy.domain.addresses import normalise_ip
from meshproxy.domain.forms import Field, Form, ValidationError, _whole_number
from meshproxy.domain.limits import QuotaKind
from meshproxy.domain.units import GB, bytes_to_gb

THRESHOLDS = (80, 100)  # percent of a limit
SIGNATURE_HEADER = "X-Meshproxy-Signature"
EVENT = "usage.threshold"
URL_MAX = 2048
SECRET_MIN = 16
SECRET_MAX = 255


def crossed(used: int, limit_gb: int) -> list[int]:
    """The thresholds `used` bytes have reached of a limit of `limit_gb` (0: no limit)."""
    if limit_gb <= 0:
        return []
    return [t for t in THRESHOLDS if used * 100 >= limit_gb * GB * t]


@dataclass(frozen=True)
class Notice:
    """One account reached one threshold of one of its limits in one billing period."""

    id: int
    account: str
    parent: str  # the parent account whose webhooks are called (itself for a parent)
    kind: QuotaKind
    threshold: int
    usage_bytes: int
    limit_gb: int
    period_start: date
    at: datetime


def notice_body(notice: Notice) -> str:
    """The JSON a webhook receives (signed as these exact bytes, UTF-8)."""
    return json.dumps(
        {
            "event": EVENT,
            "id": notice.id,
            "account": notice.account,
            "parent": notice.parent,
            "kind": notice.kind.value,
            "threshold": notice.threshold,
            "usage_bytes": notice.usage_bytes,
            "usage_gb": bytes_to_gb(notice.usage_bytes),
            "limit_gb": notice.limit_gb,
            "period_start": notice.period_start.isoformat(),
            "time": notice.at.isoformat(),
        },
        separators=(",", ":"),
    )


def signature(secret: str, body: bytes) -> str:
    """The `X-Meshproxy-Signature` value: "sha256=" and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Backoff:
    base: float  # seconds before the first retry
    most: float  # seconds between retries at most
    give_up_after: float  # seconds after the notice

    def next_attempt(self, attempts: int, created: datetime, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts (None: give up)."""
        delay = min(self.base * 2 ** max(attempts - 1, 0), self.most)
        at = now + timedelta(seconds=delay)
        return None if at > created + timedelta(seconds=self.give_up_after) else at


@dataclass(frozen=True)
class PinnedRequest:
    url: str  # the URL with its host replaced by the address to connect to
    host: str  # the Host header: the URL's own host (and port)
    sni: str | None  # the TLS server name (and the name the certificate must hold)


def pinned(url: str, address: str) -> PinnedRequest:
    """A request for `url` that connects to `address` (already checked) instead of
    resolving the URL's host again."""
    parts = urlsplit(url)
    netloc = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        netloc += f":{parts.port}"
    host = parts.hostname or ""
    is_name = normalise_ip(host) is None
    return PinnedRequest(
        url=urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")),
        host=parts.netloc,
        sni=host if parts.scheme == "https" and is_name else None,
    )


def clean_webhook_url(value: str) -> str:
    url = value.strip()
    if len(url) > URL_MAX:
        raise ValidationError(f"Ensure this value has at most {URL_MAX} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValidationError("Enter a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter a valid http:// or https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("A webhook URL holds no credentials; the secret signs each call.")
    if parts.fragment:
        raise ValidationError("A webhook URL has no #fragment.")
    return url


def clean_secret(value: str) -> str:
    if not SECRET_MIN <= len(value) <= SECRET_MAX:
        raise ValidationError(f"Enter a secret of {SECRET_MIN} to {SECRET_MAX} characters.")
    return value


class WebhookForm(Form):
    fields = {
        "url": Field(
            clean_webhook_url,
            required=True,
            description="where notices are POSTed (https://; to a public address)",
            schema={"type": "string", "format": "uri", "maxLength": URL_MAX},
        ),
        "secret": Field(
            clean_secret,
            required=True,
            description="the key of each call's HMAC-SHA256 signature (never shown again)",
            schema={"type": "string", "minLength": SECRET_MIN, "maxLength": SECRET_MAX},
        ),
    }


class WebhookIdForm(Form):
    fields = {
        "id": Field(
            _whole_number(1, 2**63 - 1),
            required=True,
            description="the webhook's id (from /api/webhook/list/)",
            schema={"type": "integer", "minimum": 1},
        )
    }
