"""meter folds: meter_folds and usage_generation replace folded_batches

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_folds",
        sa.Column("meter_id", sa.String(length=64), nullable=False),
        sa.Column("folded", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", name=op.f("pk_meter_folds")),
    )
    op.create_index(op.f("ix_meter_folds_updated_at"), "meter_folds", ["updated_at"], unique=False)
    op.create_table(
        "usage_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_generation")),
    )
    op.drop_index(op.f("ix_folded_batches_folded_at"), table_name="folded_batches")
    op.drop_table("folded_batches")


def downgrade() -> None:
    op.create_table(
        "folded_batches",
        sa.Column("batch_id", sa.String(length=100), nullable=False),
        sa.Column("folded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_folded_batches")),
    )
    op.create_index(
        op.f("ix_folded_batches_folded_at"), "folded_batches", ["folded_at"], unique=False
    )
    op.drop_table("usage_generation")
    op.drop_index(op.f("ix_meter_folds_updated_at"), table_name="meter_folds")
    op.drop_table("meter_folds")
