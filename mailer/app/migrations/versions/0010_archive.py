"""issue 14: publication switches, the archive's withheld issues, contributions, click counts

Revision ID: 0010_archive
Revises: 0002_content
Create Date: 2026-12-20 10:00:00

A branch of its own on top of content. Lists keep their defaults (archive on, clicks
not counted) until an editor switches them: no row is written for existing lists.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import consent.models

revision: str = "0010_archive"
down_revision: str | None = "0002_content"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = consent.models.UTCDateTime


def upgrade() -> None:
    for table in ("feed_items", "project_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "contributed_by", sa.String(length=200), nullable=False, server_default=""
                )
            )
    op.create_table(
        "list_publication",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("archive", sa.Boolean(), nullable=False),
        sa.Column("count_clicks", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_list_publication_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", name=op.f("pk_list_publication")),
    )
    op.create_table(
        "archive_withheld",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("withheld", sa.Boolean(), nullable=False),
        sa.Column("changed_at", UTC(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_archive_withheld_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_archive_withheld")),
    )
    op.create_table(
        "click_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issues.id"],
            name=op.f("fk_click_counts_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_click_counts")),
        sa.UniqueConstraint("issue_id", "link_key", "day", name=op.f("uq_click_counts_issue_id")),
    )
    op.create_index(op.f("ix_click_counts_issue_id"), "click_counts", ["issue_id"], unique=False)
    op.create_table(
        "contributions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("link", sa.String(length=2000), nullable=False),
        sa.Column("summary_html", sa.Text(), nullable=False),
        sa.Column("summary_text", sa.Text(), nullable=False),
        sa.Column("starts_at", UTC(), nullable=True),
        sa.Column("ends_at", UTC(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("place", sa.String(length=500), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("submitted_at", UTC(), nullable=False),
        sa.Column("confirmed_at", UTC(), nullable=True),
        sa.Column("decided_at", UTC(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["lists.id"],
            name=op.f("fk_contributions_list_id_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["feed_items.id"],
            name=op.f("fk_contributions_item_id_feed_items"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["project_events.id"],
            name=op.f("fk_contributions_event_id_project_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contributions")),
    )
    for column in ("list_id", "status", "contact_email", "submitted_at"):
        op.create_index(op.f(f"ix_contributions_{column}"), "contributions", [column], unique=False)


def downgrade() -> None:
    for column in ("list_id", "status", "contact_email", "submitted_at"):
        op.drop_index(op.f(f"ix_contributions_{column}"), table_name="contributions")
    op.drop_table("contributions")
    op.drop_index(op.f("ix_click_counts_issue_id"), table_name="click_counts")
    op.drop_table("click_counts")
    op.drop_table("archive_withheld")
    op.drop_table("list_publication")
    for table in ("project_events", "feed_items"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("contributed_by")
