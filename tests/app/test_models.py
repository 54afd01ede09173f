"""The one metadata of mailer/app/models.py and the migrations agree on which tables exist."""

from __future__ import annotations

from sqlalchemy import inspect

from mailer.app.models import DOMAINS, metadata
from mailer.app.wiring import Runtime


def test_every_domain_table_is_made_by_the_migrations(runtime: Runtime) -> None:
    migrated = set(inspect(runtime.engine).get_table_names())
    declared = set(metadata.tables)
    assert declared <= migrated, declared - migrated
    for domain in (
        "schedules",
        "feeds",
        "deliveries",
        "unmatched_reports",
        "soft_bounces",
        "operations",
    ):
        assert domain in declared  # each domain's module put its tables on the one metadata
    for table in ("list_publication", "archive_withheld", "contributions", "click_counts"):
        assert table in declared  # issue 14
    assert len(DOMAINS) == 13
