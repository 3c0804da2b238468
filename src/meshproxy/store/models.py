"""Tables. Usage is kept as a daily history per account; monthly = the days of the period.

A sub-account's bytes are written to its own rows and to its parent's, so a parent's rows
hold its whole tree (own traffic plus every sub-account's, deleted ones included).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(30), unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str | None] = mapped_column(String(20))
    last_name: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    monthly_limit_gb: Mapped[int] = mapped_column(BigInteger, default=0)
    total_limit_gb: Mapped[int] = mapped_column(BigInteger, default=0)
    # Parents only: the plan's name (plans live in the config) and the billing day (1-28).
    plan: Mapped[str | None] = mapped_column(String(64))
    billing_day: Mapped[int | None] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Of total_bytes, those folded in from the shared (Redis) counters of the current
    # generation (`UsageGeneration`; a new generation starts it again at 0): a proxy node's
    # live usage is its loaded figure + (Redis's cumulative counter - this), see
    # meter/shared.py.
    folded_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # A dashboard session is valid only while it carries this number: logging out or a
    # password change raises it, ending every session of the account (web/sessions.py).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthenticatedIp(Base):
    __tablename__ = "authenticated_ips"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    ip: Mapped[str] = mapped_column(String(45), unique=True)


class AuthenticatedHostname(Base):
    __tablename__ = "authenticated_hostnames"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    hostname: Mapped[str] = mapped_column(String(253), unique=True)


class AuthorizedProxy(Base):
    __tablename__ = "authorized_proxies"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    proxy: Mapped[str] = mapped_column(String(63), primary_key=True)


class UsageDaily(Base):
    __tablename__ = "usage_daily"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)


class Ban(Base):
    __tablename__ = "bans"

    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    until: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class AuthFailure(Base):
    __tablename__ = "auth_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip: Mapped[str] = mapped_column(String(45), index=True)
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class AuthReset(Base):
    """The last authentication success of a client IP: a failure that happened before it
    (reported late by a proxy) no longer counts toward the ban."""

    __tablename__ = "auth_resets"

    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    at: Mapped[float] = mapped_column(Float)  # seconds since the epoch


class Change(Base):
    """One row per change that proxy nodes must learn of; they poll by increasing id."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # "account" | "ban"
    subject: Mapped[str] = mapped_column(String(45))  # a username, or a banned IP
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MeterFolds(Base):
    """Which flushes of a proxy node's meter are folded into the usage: a batch whose
    flushes are all in `folded` (a `SeqRanges`, "1-57,60") is skipped when folded again."""

    __tablename__ = "meter_folds"

    meter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    folded: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class UsageGeneration(Base):
    """One row (id 1), absent until the first fold that names a generation: the generation
    of the shared (Redis) counters that `accounts.folded_bytes` counts. A newer one (Redis
    lost its data) sets every account's folded_bytes back to 0."""

    __tablename__ = "usage_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[str | None] = mapped_column(String(64))


class AuditLog(Base):
    """One control-plane change. No foreign keys: an entry outlives the accounts it names
    (a parent sees its own by owner_id, from its creation on: ids and names may be reused)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(30))  # a username, or "operator"
    operation: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(255))
    fields: Mapped[str] = mapped_column(Text)  # a JSON object; never passwords or secrets
    via: Mapped[str] = mapped_column(String(16))
    client: Mapped[str | None] = mapped_column(String(255))
    owner_id: Mapped[int | None] = mapped_column(Integer, index=True)
    owner: Mapped[str | None] = mapped_column(String(30))


class AccountStat(Base):
    """One request statistic of an account on a day (domain/stats.py: `requests`, an
    outcome, `bytes`, `host:<name>`, `hosts_other`); an account's own requests only."""

    __tablename__ = "account_stats"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(260), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Webhook(Base):
    """A parent's URL for usage notices, and the secret that signs them."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsageNotice(Base):
    """An account reached a threshold of a limit in a billing period: one row, whichever node
    saw it first (the unique key; inserted with ON CONFLICT DO NOTHING)."""

    __tablename__ = "usage_notices"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "period_start", "threshold", "limit_gb"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # "monthly" | "total"
    threshold: Mapped[int] = mapped_column(Integer)  # percent
    period_start: Mapped[date] = mapped_column(Date)
    limit_gb: Mapped[int] = mapped_column(BigInteger)
    usage_bytes: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """A notice to one webhook: pending until delivered or given up. A node claims it by
    setting `lease` and `lease_until` (in a row-locked transaction) before sending."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("notice_id", "webhook_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("usage_notices.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(
        ForeignKey("webhooks.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))  # "pending" | "delivered" | "failed"
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    lease: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[int | None] = mapped_column(Integer)  # the HTTP status; None: no answer
    error: Mapped[str | None] = mapped_column(String(255))
    duration_ms: Mapped[int] = mapped_column(Integer)
