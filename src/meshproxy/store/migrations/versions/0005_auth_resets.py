"""auth resets: the last success per client IP, so failures count in the order they happened

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_resets",
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ip", name=op.f("pk_auth_resets")),
    )


def downgrade() -> None:
    op.drop_table("auth_resets")
