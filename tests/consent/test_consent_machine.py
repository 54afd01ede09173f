"""Random sequences of subscribe, confirm, unsubscribe, erase, import, purge and re-permission:
after each step the ledger verifies and the state it replays equals the stored state."""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import text

from consent import replay
from consent.clock import FrozenClock
from consent.imports import import_csv
from consent.lists import get_list, set_consent_text
from consent.retention import purge_pending
from consent.rights import SubjectRights, UnknownSubject
from consent.tokens import TokenError
from consent.workflow import ConfirmationRequested, Evidence
from mailer.app.wiring import Runtime
from tests.consent_fixtures import FORM, ask, verify

EMAILS = st.sampled_from(
    ["ada@example.org", "ADA@Example.org", "bob@example.org", "eve@example.org"]
)
LISTS = st.sampled_from(["cyber-news", "webinars"])
TABLES = ("consent_event_details", "consent_events", "subscriptions", "subscribers", "suppressions")


def _wipe(runtime: Runtime) -> None:
    with runtime.engine.begin() as connection:
        for table in TABLES:
            connection.execute(text(f"DELETE FROM {table}"))


def test_b1_random_histories_keep_ledger_and_state_in_step(  # noqa: C901  (one state machine: its rules share the fixtures)
    runtime: Runtime, make_list: Any, clock: FrozenClock, tmp_path: Path
) -> None:
    make_list()
    make_list(slug="webinars", name="Webinars")
    rights = SubjectRights(runtime.consent)
    files = count()

    class ConsentMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            _wipe(runtime)
            self.tokens: list[str] = []

        def _keep(self, announced: Any) -> None:
            self.tokens += [a.token for a in announced if isinstance(a, ConfirmationRequested)]

        @rule(email=EMAILS, slug=LISTS)
        def subscribe(self, email: str, slug: str) -> None:
            token = ask(runtime, email, "Someone", slug)
            if token:
                self.tokens.append(token)

        @rule(data=st.data())
        def confirm(self, data: st.DataObject) -> None:
            if not self.tokens:
                return
            token = data.draw(st.sampled_from(self.tokens))
            try:
                runtime.consent.confirm(token, FORM)
            except TokenError:
                pass  # superseded, purged or erased

        @rule(email=EMAILS, slug=LISTS)
        def unsubscribe(self, email: str, slug: str) -> None:
            runtime.consent.unsubscribe_address(slug, email, Evidence("link", "post:/unsubscribe"))

        @rule(email=EMAILS)
        def erase(self, email: str) -> None:
            try:
                rights.erase(Evidence("cli", "cli"), email=email)
            except UnknownSubject:
                pass

        @rule(emails=st.lists(EMAILS, max_size=3), evidence=st.booleans(), slug=LISTS)
        def import_file(self, emails: list[str], evidence: bool, slug: str) -> None:
            file = tmp_path / f"import-{next(files)}.csv"
            proof = ",2025-01-01,fair" if evidence else ",,"
            rows = [f"{e},Imported{proof}" for e in emails]
            file.write_text("\n".join(["email,name,consented_at,consent_source", *rows]) + "\n")
            import_csv(runtime.consent, runtime.engine, file, slug, announce=self._keep)

        @rule(email=EMAILS, slug=st.sampled_from(["cyber-news", "*"]))
        def suppress(self, email: str, slug: str) -> None:
            runtime.consent.suppress(email, slug, "complaint", Evidence("bounce", "dsn"))

        @rule(days=st.sampled_from([0, 3, 8]))
        def purge(self, days: int) -> None:
            clock.advance(days=days)
            purge_pending(runtime.consent)

        @rule()
        def new_text_and_repermission(self) -> None:
            with runtime.sessions.begin() as session:
                mailing_list = get_list(session, "cyber-news")
                version = mailing_list.current_text.version + 1
                set_consent_text(session, clock, mailing_list, f"Consent text, version {version}.")
            self._keep(runtime.consent.ask_repermission("cyber-news", Evidence("cli", "cli")))

        @invariant()
        def ledger_verifies_and_replays_to_the_stored_state(self) -> None:
            result = verify(runtime)
            assert result.ok, result.breaks
            with runtime.sessions() as session:
                assert replay.drift(session) == []

    run_state_machine_as_test(
        ConsentMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
