"""Audit entries: one control-plane change (who, what, when, from where), and the rule that
keeps passwords and secrets out of them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

OPERATOR = "operator"  # the actor of `meshproxy admin ...` commands
REDACTED = "(redacted)"
SECRET_WORDS = ("password", "secret", "token", "key")
MAX_FIELDS = 20  # a request may carry any parameters; an entry keeps at most this many
MAX_VALUE = 200  # characters of one field's value


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # the account's username, or OPERATOR
    operation: str  # "sub.create", "ip.add", "parent.set", ...
    target: str  # the account (or address) changed
    fields: Mapping[str, str] = field(default_factory=dict)  # what changed; secrets redacted
    via: str = "local"  # "api" | "dashboard" | "cli" | "local"
    client: str | None = None  # the client address (the CLI: user@host)
    owner_id: int | None = None  # the parent account whose tree the change concerns
    owner: str | None = None  # that parent's username when it was recorded
    id: int = 0


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def audited_fields(fields: Mapping[str, object]) -> dict[str, str]:
    """The fields as an entry keeps them: secrets named but never their values, None left
    out, the rest as text, bounded in number and length."""
    kept: dict[str, str] = {}
    for name, value in fields.items():
        if len(kept) >= MAX_FIELDS:
            break
        if value is None:
            continue
        key = str(name)[:MAX_VALUE]
        kept[key] = REDACTED if is_secret(key) else str(value)[:MAX_VALUE]
    return kept
