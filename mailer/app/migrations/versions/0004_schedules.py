"""schedules and their slots

Revision ID: 0004_schedules
Revises: 0002_content
Create Date: 2026-11-26 06:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consent.models

revision: str = "0004_schedules"
down_revision: str | None = "0002_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("lead_minutes", sa.Integer(), nullable=False),
        sa.Column("min_items", sa.Integer(), nullable=False),
        sa.Column("approval", sa.String(length=10), nullable=False),
        sa.Column("grace_minutes", sa.Integer(), nullable=False),
        sa.Column("editors", sa.Text(), nullable=False),
        sa.Column("created_at", consent.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], name=op.f("fk_schedules_list_id_lists"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index(op.f("ix_schedules_list_id"), "schedules", ["list_id"], unique=False)
    op.create_table(
        "schedule_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("slot_key", sa.String(length=16), nullable=False),
        sa.Column("slot_at", consent.models.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", consent.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_schedule_slots_issue_id_issues"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_slots_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_slots")),
        sa.UniqueConstraint("schedule_id", "slot_key", name=op.f("uq_schedule_slots_schedule_id")),
    )
    op.create_index(
        op.f("ix_schedule_slots_schedule_id"), "schedule_slots", ["schedule_id"], unique=False
    )
    op.create_index(op.f("ix_schedule_slots_slot_at"), "schedule_slots", ["slot_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_schedule_slots_slot_at"), table_name="schedule_slots")
    op.drop_index(op.f("ix_schedule_slots_schedule_id"), table_name="schedule_slots")
    op.drop_table("schedule_slots")
    op.drop_index(op.f("ix_schedules_list_id"), table_name="schedules")
    op.drop_table("schedules")
