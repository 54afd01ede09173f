"""scale: delivery workers on PostgreSQL: Procrastinate's schema and the shared rate buckets

Revision ID: 0010_scale_workers
Revises: 0003_delivery
Create Date: 2026-12-10 10:00:00

On the delivery branch, PostgreSQL only (SQLite runs campaigns in-process and has
no workers). Procrastinate's schema is applied here, from the installed package,
so that `mailer db upgrade` is the one step that readies a database for workers;
a later Procrastinate release that changes its schema comes with a migration of
ours that runs its SQL migrations (procrastinate/sql/migrations), pinned below 4.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_scale_workers"
down_revision: str | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # The raw cursor: the schema's SQL holds casts (::) and % that no layer may touch.
    cursor = bind.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
    if not cursor.fetchone()[0]:  # type: ignore[index]
        cursor.execute(SchemaManager.get_schema())
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS delivery_buckets (name varchar(200) PRIMARY KEY,"
        " tokens double precision NOT NULL, at timestamptz NOT NULL)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS delivery_buckets")
