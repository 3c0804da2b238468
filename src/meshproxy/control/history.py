"""What a parent may read of the audit log: the changes to its own accounts (itself and its
sub-accounts, by anyone: itself, a sub-account on the dashboard, the operator)."""

from __future__ import annotations

from datetime import datetime

from meshproxy.config import Settings
from meshproxy.control.common import Data, operation
from meshproxy.domain.accounts import AccountRecord
from meshproxy.domain.audit import AuditEntry
from meshproxy.store import Store

SHOWN = 200


@operation
def own_audit_entries(
    settings: Settings, store: Store, caller: AccountRecord, data: Data, *, now: datetime
) -> list[AuditEntry]:
    """The newest SHOWN; none from before the caller's creation (a deleted account's id or
    name, reused, must not show its entries)."""
    return store.audit.entries(owner_id=caller.id, since=caller.created_at, limit=SHOWN)
