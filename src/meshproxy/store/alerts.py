"""Usage alerts in the store: parents' webhooks; notices decided once per account, limit,
period and threshold (a unique row: whichever node inserts it first, ON CONFLICT DO
NOTHING); deliveries claimed under a row lock and a lease, so one node sends each."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update

from meshproxy.domain.alerts import Notice, crossed, notice_body
from meshproxy.domain.billing import billing_period
from meshproxy.domain.limits import QuotaKind
from meshproxy.store import tables as t
from meshproxy.store.accounts import lock_parent
from meshproxy.store.dialect import aware, chunks
from meshproxy.store.errors import LimitReached
from meshproxy.store.transaction import Database, Transaction

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
CHUNK = 2000  # rows per multi-row INSERT, ids per IN list (at most 65,535 parameters)


def _key(candidate: dict[str, Any]) -> tuple[Any, ...]:
    """A notice's unique key (usage_notices' unique constraint)."""
    return tuple(
        candidate[name] for name in ("account_id", "kind", "period_start", "threshold", "limit_gb")
    )


@dataclass(frozen=True)
class WebhookRecord:
    id: int
    url: str
    created_at: datetime


@dataclass(frozen=True)
class DeliveryJob:
    """A delivery this node has claimed: send `body` to `url`, signed with `secret`."""

    id: int
    lease: str
    url: str
    secret: str
    body: str
    attempts: int  # before this one
    created_at: datetime


@dataclass(frozen=True)
class AttemptView:
    at: datetime
    status: int | None
    error: str | None
    duration_ms: int


@dataclass(frozen=True)
class DeliveryView:
    url: str
    state: str
    attempts: list[AttemptView]
    next_at: datetime | None  # while pending


@dataclass(frozen=True)
class NoticeView:
    notice: Notice
    deliveries: list[DeliveryView]


class Alerts:
    """The webhooks, usage notices and their deliveries' tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # ---- webhooks -----------------------------------------------------------------------

    def add_webhook(
        self, account_id: int, url: str, secret: str, now: datetime, *, max_webhooks: int
    ) -> WebhookRecord:
        """Raises LimitReached when the account has `max_webhooks` already (counted in the
        transaction that adds)."""
        with self._db.transaction(locked=True) as tx:
            lock_parent(tx, account_id)
            count = tx.scalar(
                select(func.count())
                .select_from(t.webhooks)
                .where(t.webhooks.c.account_id == account_id)
            )
            if (count or 0) >= max_webhooks:
                raise LimitReached(max_webhooks)
            webhook_id = tx.execute(
                insert(t.webhooks)
                .values(account_id=account_id, url=url, secret=secret, created_at=now)
                .returning(t.webhooks.c.id)
            ).scalar_one()
            return WebhookRecord(webhook_id, url, aware(now))

    def list_webhooks(self, account_id: int) -> list[WebhookRecord]:
        with self._db.transaction() as tx:
            return [
                WebhookRecord(row.id, row.url, aware(row.created_at))
                for row in tx.execute(
                    select(t.webhooks)
                    .where(t.webhooks.c.account_id == account_id)
                    .order_by(t.webhooks.c.id)
                )
            ]

    def delete_webhook(self, account_id: int, webhook_id: int) -> bool:
        with self._db.transaction() as tx:
            done = tx.execute(
                delete(t.webhooks).where(
                    t.webhooks.c.id == webhook_id, t.webhooks.c.account_id == account_id
                )
            )
            return bool(done.rowcount)

    # ---- notices ------------------------------------------------------------------------

    def record_notices(self, now: datetime) -> list[Notice]:
        """Compare every limited account's usage with its limits; insert a notice for each
        threshold reached that has none yet this period (the ones inserted are returned),
        and a pending delivery of it to each of its parent's webhooks. Any number of nodes
        may run this at once: the unique key makes each notice once."""
        with self._db.transaction() as tx:
            limited = tx.execute(
                select(
                    t.accounts.c.id,
                    t.accounts.c.username,
                    t.accounts.c.parent_id,
                    t.accounts.c.monthly_limit_gb,
                    t.accounts.c.total_limit_gb,
                    t.accounts.c.total_bytes,
                ).where(or_(t.accounts.c.monthly_limit_gb > 0, t.accounts.c.total_limit_gb > 0))
            ).all()
            if not limited:
                return []
            owner_ids = {row.parent_id or row.id for row in limited}
            owners: dict[int, tuple[str, int | None]] = {}
            for ids in chunks(sorted(owner_ids), CHUNK):
                owners.update(
                    (account_id, (username, billing_day))
                    for account_id, username, billing_day in tx.execute(
                        select(
                            t.accounts.c.id, t.accounts.c.username, t.accounts.c.billing_day
                        ).where(t.accounts.c.id.in_(ids))
                    )
                )
            starts: dict[int, date] = {}
            for row in limited:
                owner = owners.get(row.parent_id or row.id)
                starts[row.id] = billing_period((owner and owner[1]) or 1, now).start
            monthly: dict[int, int] = {}
            for start in set(starts.values()):
                for ids in chunks(sorted(i for i, s in starts.items() if s == start), CHUNK):
                    monthly.update(
                        (i, int(n or 0))
                        for i, n in tx.execute(
                            select(t.usage_daily.c.account_id, func.sum(t.usage_daily.c.bytes))
                            .where(
                                t.usage_daily.c.account_id.in_(ids), t.usage_daily.c.day >= start
                            )
                            .group_by(t.usage_daily.c.account_id)
                        )
                    )
            candidates: list[dict[str, Any]] = []
            for row in limited:
                if (row.parent_id or row.id) not in owners:
                    continue
                for kind, limit_gb, used in (
                    (QuotaKind.MONTHLY, row.monthly_limit_gb, monthly.get(row.id, 0)),
                    (QuotaKind.TOTAL, row.total_limit_gb, int(row.total_bytes)),
                ):
                    for threshold in crossed(used, limit_gb):
                        candidates.append(
                            {
                                "account_id": row.id,
                                "owner_id": row.parent_id or row.id,
                                "kind": kind.value,
                                "threshold": threshold,
                                "period_start": starts[row.id],
                                "limit_gb": limit_gb,
                                "usage_bytes": used,
                                "at": now,
                            }
                        )
            candidates = self._not_noticed(tx, candidates)
            inserted: list[tuple[int, int]] = []  # (notice id, candidate index)
            names = {row.id: row.username for row in limited}
            for first in range(0, len(candidates), CHUNK):
                chunk = candidates[first : first + CHUNK]
                statement = (
                    tx.insert(t.usage_notices)
                    .values(chunk)
                    .on_conflict_do_nothing()
                    .returning(
                        t.usage_notices.c.id,
                        t.usage_notices.c.account_id,
                        t.usage_notices.c.kind,
                        t.usage_notices.c.threshold,
                    )
                )
                index = {
                    (c["account_id"], c["kind"], c["threshold"]): first + n
                    for n, c in enumerate(chunk)
                }
                for notice_id, account_id, kind, threshold in tx.execute(statement):
                    inserted.append((notice_id, index[(account_id, kind, threshold)]))
            notices = [
                Notice(
                    id=notice_id,
                    account=names[candidates[i]["account_id"]],
                    parent=owners[candidates[i]["owner_id"]][0],
                    kind=QuotaKind(candidates[i]["kind"]),
                    threshold=candidates[i]["threshold"],
                    usage_bytes=candidates[i]["usage_bytes"],
                    limit_gb=candidates[i]["limit_gb"],
                    period_start=candidates[i]["period_start"],
                    at=now,
                )
                for notice_id, i in sorted(inserted)
            ]
            self._queue_deliveries(
                tx,
                [
                    (n, candidates[i]["owner_id"])
                    for n, (_, i) in zip(notices, sorted(inserted), strict=True)
                ],
                now,
            )
            return notices

    def _not_noticed(
        self, tx: Transaction, candidates: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The candidates without a notice yet: read first, so that the usual check (every
        notice made already) writes nothing; the INSERT's ON CONFLICT settles a race."""
        made: set[tuple[Any, ...]] = set()
        notice = t.usage_notices
        for ids in chunks(sorted({c["account_id"] for c in candidates}), CHUNK):
            made.update(
                tuple(row)
                for row in tx.execute(
                    select(
                        notice.c.account_id,
                        notice.c.kind,
                        notice.c.period_start,
                        notice.c.threshold,
                        notice.c.limit_gb,
                    ).where(
                        notice.c.account_id.in_(ids),
                        notice.c.period_start.in_({c["period_start"] for c in candidates}),
                    )
                )
            )
        return [c for c in candidates if _key(c) not in made]

    def _queue_deliveries(
        self, tx: Transaction, notices: Sequence[tuple[Notice, int]], now: datetime
    ) -> None:
        """A pending delivery of each new notice to each webhook of its parent."""
        if not notices:
            return
        hooks: dict[int, list[int]] = defaultdict(list)
        for owners in chunks(sorted({owner for _, owner in notices}), CHUNK):
            for webhook_id, account_id in tx.execute(
                select(t.webhooks.c.id, t.webhooks.c.account_id)
                .where(t.webhooks.c.account_id.in_(owners))
                .order_by(t.webhooks.c.id)
            ):
                hooks[account_id].append(webhook_id)
        rows = [
            {
                "notice_id": notice.id,
                "webhook_id": webhook_id,
                "body": notice_body(notice),
                "state": PENDING,
                "attempts": 0,
                "next_at": now,
                "created_at": now,
            }
            for notice, owner in notices
            for webhook_id in hooks[owner]
        ]
        if rows:
            tx.execute(insert(t.webhook_deliveries), rows)

    # ---- deliveries ---------------------------------------------------------------------

    def claim_deliveries(
        self, now: datetime, lease_seconds: float, limit: int = 20
    ) -> list[DeliveryJob]:
        """Pending deliveries due now that no node holds, leased to the caller until
        now + lease_seconds: rows locked while claimed (PostgreSQL: FOR UPDATE SKIP LOCKED,
        so nodes claiming at once take different rows; SQLite: the write lock)."""
        token = uuid.uuid4().hex
        delivery = t.webhook_deliveries
        with self._db.transaction(locked=True) as tx:
            rows = tx.execute(
                select(
                    delivery.c.id,
                    delivery.c.body,
                    delivery.c.attempts,
                    delivery.c.created_at,
                    t.webhooks.c.url,
                    t.webhooks.c.secret,
                )
                .join(t.webhooks, t.webhooks.c.id == delivery.c.webhook_id)
                .where(
                    delivery.c.state == PENDING,
                    delivery.c.next_at <= now,
                    or_(delivery.c.lease_until.is_(None), delivery.c.lease_until < now),
                )
                .order_by(delivery.c.next_at, delivery.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=delivery)
            ).all()
            if not rows:
                return []
            tx.execute(
                update(delivery)
                .where(delivery.c.id.in_([row.id for row in rows]))
                .values(lease=token, lease_until=now + timedelta(seconds=lease_seconds))
            )
            return [
                DeliveryJob(
                    id=row.id,
                    lease=token,
                    url=row.url,
                    secret=row.secret,
                    body=row.body,
                    attempts=row.attempts,
                    created_at=aware(row.created_at),
                )
                for row in rows
            ]

    def finish_attempt(
        self,
        job: DeliveryJob,
        at: datetime,
        *,
        status: int | None,
        error: str | None,
        duration_ms: int,
        retry_at: datetime | None,
        delivered: bool,
    ) -> None:
        """Record one attempt; the delivery is delivered, pending again until `retry_at`,
        or failed (neither). Only the lease's holder changes the delivery's state; a
        delivery deleted meanwhile (with its webhook) records nothing."""
        delivery = t.webhook_deliveries
        final = delivered or retry_at is None
        with self._db.transaction() as tx:
            if tx.scalar(select(delivery.c.id).where(delivery.c.id == job.id)) is None:
                return  # its webhook (or account) was deleted meanwhile
            tx.execute(
                insert(t.delivery_attempts).values(
                    delivery_id=job.id,
                    at=at,
                    status=status,
                    error=None if error is None else error[:255],
                    duration_ms=duration_ms,
                )
            )
            tx.execute(
                update(delivery)
                .where(delivery.c.id == job.id, delivery.c.lease == job.lease)
                .values(
                    state=DELIVERED if delivered else (FAILED if final else PENDING),
                    attempts=delivery.c.attempts + 1,
                    next_at=retry_at or at,
                    lease=None,
                    lease_until=None,
                    finished_at=at if final else None,
                )
            )

    def history(self, owner_id: int, limit: int = 50) -> list[NoticeView]:
        """A parent's newest notices (its own and its sub-accounts'), each with its
        deliveries and their attempts."""
        notice, delivery, attempt = t.usage_notices, t.webhook_deliveries, t.delivery_attempts
        with self._db.transaction() as tx:
            rows = tx.execute(
                select(notice, t.accounts.c.username)
                .join(t.accounts, t.accounts.c.id == notice.c.account_id)
                .where(notice.c.owner_id == owner_id)
                .order_by(notice.c.at.desc(), notice.c.id.desc())
                .limit(limit)
            ).all()
            owner = tx.scalar(select(t.accounts.c.username).where(t.accounts.c.id == owner_id))
            ids = [row.id for row in rows]
            deliveries: dict[int, list[tuple[int, DeliveryView]]] = defaultdict(list)
            attempts: dict[int, list[AttemptView]] = defaultdict(list)
            if ids:
                found = tx.execute(
                    select(delivery, t.webhooks.c.url)
                    .join(t.webhooks, t.webhooks.c.id == delivery.c.webhook_id)
                    .where(delivery.c.notice_id.in_(ids))
                    .order_by(delivery.c.id)
                ).all()
                delivery_ids = [d.id for d in found]
                for row in tx.execute(
                    select(attempt)
                    .where(attempt.c.delivery_id.in_(delivery_ids))
                    .order_by(attempt.c.id)
                ):
                    attempts[row.delivery_id].append(
                        AttemptView(aware(row.at), row.status, row.error, row.duration_ms)
                    )
                for d in found:
                    deliveries[d.notice_id].append(
                        (
                            d.id,
                            DeliveryView(
                                url=d.url,
                                state=d.state,
                                attempts=attempts[d.id],
                                next_at=aware(d.next_at) if d.state == PENDING else None,
                            ),
                        )
                    )
            return [
                NoticeView(
                    notice=Notice(
                        id=row.id,
                        account=row.username,
                        parent=owner or "",
                        kind=QuotaKind(row.kind),
                        threshold=row.threshold,
                        usage_bytes=int(row.usage_bytes),
                        limit_gb=int(row.limit_gb),
                        period_start=row.period_start,
                        at=aware(row.at),
                    ),
                    deliveries=[view for _, view in deliveries[row.id]],
                )
                for row in rows
            ]
