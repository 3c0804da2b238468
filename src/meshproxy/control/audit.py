"""Recording control-plane changes in the audit log: who, what, when, from where.

The faces say where a request comes from (`acting_from`, around the call: the API's
handler, the dashboard's page runner, the admin CLI's store); the operations say what they
change (`control.common.change`, the operator's functions), and this module writes the
entry. A change already made is not undone when its entry cannot be written: that is
logged as an error instead (the store was reachable a moment before)."""

from __future__ import annotations

import getpass
import logging
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.audit import OPERATOR, AuditEntry, audited_fields
from meshproxy.store import Store, StoreUnavailable

log = logging.getLogger("meshproxy.audit")


@dataclass(frozen=True)
class Origin:
    via: str  # "api" | "dashboard" | "cli" | "local"
    address: str | None = None  # the client's address (the CLI: user@host)
    user: str | None = None  # who is logged in, when not the caller (a dashboard sub-account)


LOCAL = Origin("local")
_origin: ContextVar[Origin] = ContextVar("meshproxy_audit_origin", default=LOCAL)


@contextmanager
def acting_from(origin: Origin) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def cli_origin() -> Origin:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's numeric uid)
        user = "?"
    return Origin("cli", f"{user}@{socket.gethostname()}")


def _owner(account: AccountRecord) -> tuple[int, str]:
    """The parent whose tree `account` belongs to (itself when a parent)."""
    if account.parent_id is None:
        return account.id, account.username
    return account.parent_id, account.parent_username or ""


def record(
    store: Store,
    operation: str,
    target: str,
    fields: Mapping[str, object],
    *,
    actor: AccountRecord | None,
    owner: AccountRecord | None,
    now: datetime | None = None,
) -> None:
    """One entry for a change made; `actor` None: the operator."""
    origin = _origin.get()
    owner_id, owner_name = _owner(owner) if owner is not None else (None, None)
    entry = AuditEntry(
        at=now or datetime.now(UTC),
        actor=origin.user or (OPERATOR if actor is None else actor.username),
        operation=operation,
        target=target,
        fields=audited_fields(fields),
        via=origin.via,
        client=origin.address,
        owner_id=owner_id,
        owner=owner_name,
    )
    try:
        store.audit.record(entry)
    except StoreUnavailable as error:
        log.error("audit entry not written (%s): %s", error, entry)
