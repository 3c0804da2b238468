"""shared usage folds: folded_batches, accounts.folded_bytes

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "folded_batches",
        sa.Column("batch_id", sa.String(length=100), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_folded_batches")),
    )
    op.create_index(
        op.f("ix_folded_batches_folded_at"), "folded_batches", ["folded_at"], unique=False
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("folded_bytes", sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("folded_bytes")
    op.drop_index(op.f("ix_folded_batches_folded_at"), table_name="folded_batches")
    op.drop_table("folded_batches")
