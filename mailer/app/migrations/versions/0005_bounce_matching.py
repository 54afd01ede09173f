"""bounces: reports that matched no copy we sent

Revision ID: 0005_bounce_matching
Revises: 0003_delivery
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consent.models

revision: str = "0005_bounce_matching"
down_revision: str | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = consent.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "unmatched_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", UTC(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("named", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_reports")),
    )
    with op.batch_alter_table("unmatched_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unmatched_reports_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unmatched_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unmatched_reports_received_at"))
    op.drop_table("unmatched_reports")
