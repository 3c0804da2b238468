"""Tables, as SQLAlchemy Core `Table`s on one `metadata` (Alembic's target; no ORM: a node
that loads the store does not load `sqlalchemy.orm`). Usage is kept as a daily history per
account; monthly = the days of the period.

A sub-account's bytes are written to its own rows and to its parent's, so a parent's rows
hold its whole tree (own traffic plus every sub-account's, deleted ones included).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def _account_id(*, primary_key: bool = False, index: bool = False) -> Column[int]:
    """A column naming an account, deleted with it."""
    return Column(
        "account_id",
        Integer,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        primary_key=primary_key,
        index=index,
        nullable=False,
    )


accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(30), unique=True, nullable=False),
    Column("parent_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), index=True),
    Column("password_hash", String(255)),
    Column("first_name", String(20)),
    Column("last_name", String(20)),
    Column("email", String(255)),
    Column("active", Boolean, default=True, nullable=False),
    Column("monthly_limit_gb", BigInteger, default=0, nullable=False),
    Column("total_limit_gb", BigInteger, default=0, nullable=False),
    # Parents only: the plan's name (plans live in the config) and the billing day (1-28).
    Column("plan", String(64)),
    Column("billing_day", Integer),
    Column("total_bytes", BigInteger, default=0, nullable=False),
    # Of total_bytes, those folded in from the shared (Redis) counters of the current
    # generation (`usage_generation`; a new generation starts it again at 0): a proxy
    # node's live usage is its loaded figure + (Redis's cumulative counter - this), see
    # meter/shared.py.
    Column("folded_bytes", BigInteger, default=0, server_default="0", nullable=False),
    # A dashboard session is valid only while it carries this number: logging out or a
    # password change raises it, ending every session of the account (web/sessions.py).
    Column("session_epoch", Integer, default=0, server_default="0", nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

authenticated_ips = Table(
    "authenticated_ips",
    metadata,
    Column("id", Integer, primary_key=True),
    _account_id(index=True),
    Column("ip", String(45), unique=True, nullable=False),
)

authenticated_hostnames = Table(
    "authenticated_hostnames",
    metadata,
    Column("id", Integer, primary_key=True),
    _account_id(index=True),
    Column("hostname", String(253), unique=True, nullable=False),
)

authorized_proxies = Table(
    "authorized_proxies",
    metadata,
    _account_id(primary_key=True),
    Column("proxy", String(63), primary_key=True),
)

usage_daily = Table(
    "usage_daily",
    metadata,
    _account_id(primary_key=True),
    Column("day", Date, primary_key=True),
    Column("bytes", BigInteger, default=0, nullable=False),
)

bans = Table(
    "bans",
    metadata,
    Column("ip", String(45), primary_key=True),
    Column("until", Float, nullable=False),  # seconds since the epoch
)

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("ip", String(45), index=True, nullable=False),
    Column("at", Float, nullable=False),  # seconds since the epoch
)

# The last authentication success of a client IP: a failure that happened before it
# (reported late by a proxy) no longer counts toward the ban.
auth_resets = Table(
    "auth_resets",
    metadata,
    Column("ip", String(45), primary_key=True),
    Column("at", Float, nullable=False),  # seconds since the epoch
)

# One row per change that proxy nodes must learn of; they poll by increasing id.
changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "account" | "ban"
    Column("subject", String(45), nullable=False),  # a username, or a banned IP
    Column("at", DateTime(timezone=True), nullable=False),
)

# Which flushes of a proxy node's meter are folded into the usage: a batch whose flushes
# are all in `folded` (a `SeqRanges`, "1-57,60") is skipped when folded again.
meter_folds = Table(
    "meter_folds",
    metadata,
    Column("meter_id", String(64), primary_key=True),
    Column("folded", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), index=True, nullable=False),
)

# One row (id 1), absent until the first fold that names a generation: the generation of
# the shared (Redis) counters that `accounts.folded_bytes` counts. A newer one (Redis lost
# its data) sets every account's folded_bytes back to 0.
usage_generation = Table(
    "usage_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", String(64)),
)

# One control-plane change. No foreign keys: an entry outlives the accounts it names (a
# parent sees its own by owner_id, from its creation on: ids and names may be reused).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), index=True, nullable=False),
    Column("actor", String(30), nullable=False),  # a username, or "operator"
    Column("operation", String(40), nullable=False),
    Column("target", String(255), nullable=False),
    Column("fields", Text, nullable=False),  # a JSON object; never passwords or secrets
    Column("via", String(16), nullable=False),
    Column("client", String(255)),
    Column("owner_id", Integer, index=True),
    Column("owner", String(30)),
)

# One request statistic of an account on a day (domain/stats.py: `requests`, an outcome,
# `bytes`, `host:<name>`, `hosts_other`); an account's own requests only.
account_stats = Table(
    "account_stats",
    metadata,
    _account_id(primary_key=True),
    Column("day", Date, primary_key=True),
    Column("name", String(260), primary_key=True),
    Column("value", BigInteger, default=0, nullable=False),
)

# A parent's URL for usage notices, and the secret that signs them.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    _account_id(index=True),
    Column("url", String(2048), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# An account reached a threshold of a limit in a billing period: one row, whichever node
# saw it first (the unique key; inserted with ON CONFLICT DO NOTHING).
usage_notices = Table(
    "usage_notices",
    metadata,
    Column("id", Integer, primary_key=True),
    _account_id(),
    Column(
        "owner_id",
        Integer,
        ForeignKey("accounts.id", ondelete="CASCADE"),
        index=True,
        nullable=False,
    ),
    Column("kind", String(16), nullable=False),  # "monthly" | "total"
    Column("threshold", Integer, nullable=False),  # percent
    Column("period_start", Date, nullable=False),
    Column("limit_gb", BigInteger, nullable=False),
    Column("usage_bytes", BigInteger, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("account_id", "kind", "period_start", "threshold", "limit_gb"),
)

# A notice to one webhook: pending until delivered or given up. A node claims it by
# setting `lease` and `lease_until` (in a row-locked transaction) before sending.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "notice_id",
        Integer,
        ForeignKey("usage_notices.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "webhook_id",
        Integer,
        ForeignKey("webhooks.id", ondelete="CASCADE"),
        index=True,
        nullable=False,
    ),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # "pending" | "delivered" | "failed"
    Column("attempts", Integer, default=0, nullable=False),
    Column("next_at", DateTime(timezone=True), index=True, nullable=False),
    Column("lease", String(32)),
    Column("lease_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    UniqueConstraint("notice_id", "webhook_id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "delivery_id",
        Integer,
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        index=True,
        nullable=False,
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer),  # the HTTP status; None: no answer
    Column("error", String(255)),
    Column("duration_ms", Integer, nullable=False),
)
