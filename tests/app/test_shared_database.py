"""Two deployments in separate schemas of one PostgreSQL database keep separate locks.

The consent ledger's append lock and a schedule slot's sending lock are advisory
locks, which PostgreSQL keys per database, not per schema: keyed by a bare number,
one deployment's append or slot held the other's (and the test suite's parallel
runs, one schema each, held each other's).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from consent import ledger
from consent.clock import FrozenClock
from consent.models import ConsentEvent, EventKind
from mailer.app import db
from mailer.cadence.schedules import ScheduleService
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_schemas() -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL run skipped: MAILER_TEST_POSTGRES_URL is not set")
    admin = create_engine(db.normalise_url(POSTGRES_URL))
    names = [f"t_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    engines = []
    try:
        for name in names:
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{name}"'))
            sep = "&" if "?" in POSTGRES_URL else "?"
            engine = db.make_engine(f"{POSTGRES_URL}{sep}options=-csearch_path%3D{name}")
            db.upgrade(engine)
            engines.append(engine)
        yield sessionmaker(engines[0]), sessionmaker(engines[1])
    finally:
        for engine in engines:
            engine.dispose()
        with admin.begin() as connection:
            for name in names:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()


def _entry(clock: FrozenClock) -> ledger.Entry:
    return ledger.Entry(
        kind=EventKind.REQUESTED,
        list_slug="cyber-news",
        subject_ref="subject-1",
        method="double-opt-in",
        source="form",
        occurred_at=clock.now(),
        text_version=1,
        data={},
    )


def test_an_append_in_one_schema_does_not_wait_for_the_other_schema_s_ledger(
    two_schemas: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = two_schemas
    clock = FrozenClock()
    with first.begin() as holding:
        ledger.append(holding, _entry(clock))  # holds the first schema's append lock
        with second.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            appended = ledger.append(other, _entry(clock))
            assert appended.id == 1
        # The same schema still queues behind the holder: a second appender times out.
        with first() as same:
            same.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                ledger.append(same, _entry(clock))
            same.rollback()
    with second() as session:
        assert session.query(ConsentEvent).count() == 1
    with first() as session:
        assert session.query(ConsentEvent).count() == 1


class _NoPublisher:
    async def send(self, issue_id: int) -> bool:
        raise AssertionError("nothing is sent here")


def test_a_slot_held_in_one_schema_is_free_in_the_other(
    two_schemas: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = two_schemas
    clock = FrozenClock()
    here = ScheduleService(first, clock, _NoPublisher())
    there = ScheduleService(second, clock, _NoPublisher())
    beside = ScheduleService(first, clock, _NoPublisher())  # another process, same schema
    with here._exclusive(1) as mine:
        assert mine
        with there._exclusive(1) as theirs:
            assert theirs, "slot 1 of the other schema was held by this one"
        with beside._exclusive(1) as also_mine:
            assert not also_mine, "slot 1 of the same schema was sent twice"
    with beside._exclusive(1) as now_free:
        assert now_free
