"""calendars: the iCalendar URLs a list's events come from, with validators and health

Revision ID: 0006_calendars
Revises: 0002_content
Create Date: 2026-12-02 11:00:00

On the content branch. Every http(s) source of imported events becomes a calendar
(added when its first event was), so the calendars refreshed before each draft are
the same after the upgrade as before it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consent.models

revision: str = "0006_calendars"
down_revision: str | None = "0002_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("added_at", consent.models.UTCDateTime(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_fetched_at", consent.models.UTCDateTime(), nullable=True),
        sa.Column("last_success_at", consent.models.UTCDateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("retry_at", consent.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"], ["lists.id"], name=op.f("fk_calendars_list_id_lists"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("list_id", "url", name=op.f("uq_calendars_list_id")),
    )
    op.create_index(op.f("ix_calendars_list_id"), "calendars", ["list_id"], unique=False)
    op.execute(
        "INSERT INTO calendars (list_id, url, added_at, failures, last_error)"
        " SELECT list_id, source, MIN(created_at), 0, '' FROM project_events"
        " WHERE source LIKE 'http://%' OR source LIKE 'https://%'"
        " GROUP BY list_id, source"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_calendars_list_id"), table_name="calendars")
    op.drop_table("calendars")
