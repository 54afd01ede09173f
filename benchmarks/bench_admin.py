"""The workspace's pages at 100,000 subscribers and 200 issues, beside GET /healthz.

Server time in-process (the ASGI app through Starlette's test client, the median
of 15 requests after a warm-up), on SQLite: the dashboard, an issue editor, a
prefix search of the subscribers, and the consent report at an instant (the
first request starts the ledger's replay in a worker process and answers at once; the
page polls until it is ready, then shows the kept replay). Goal: each under
150 ms. The data is bulk-inserted: 100,000 readers imported with evidence (so
the ledger has their events), 200 issues, 100,000 deliveries of the last one.
"""

from __future__ import annotations

import csv
import re
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from consent.clock import FrozenClock
from consent.imports import import_csv
from consent.lists import ListSpec, create_list
from consent.models import Subscriber
from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.content import curation
from mailer.content.curation import IssueChanges
from mailer.content.models import Issue
from mailer.delivery.models import Delivery

READERS = 100_000
ISSUES = 200
GOAL = 0.150
LIST = ListSpec(
    slug="cyber-news",
    name="Cyberwatching.eu Cluster News",
    purpose="News about European cybersecurity clusters",
    cadence="monthly",
    controller_name="Cyberwatching.eu consortium",
    controller_contact="dpo@example.org",
    consent_text="I agree to receive the Cluster News by email, once a month.",
)
PASSWORD = "benchmark password 0123"


def _seed(runtime: Runtime, folder: Path) -> int:
    with runtime.sessions.begin() as session:
        create_list(session, runtime.clock, LIST)
    path = folder / "readers.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "name", "consented_at", "consent_source"])
        for n in range(READERS):
            writer.writerow([f"reader{n:06d}@cluster{n % 97}.example.org", f"Reader {n}",
                             "2025-03-01", "fair"])  # fmt: skip
    import_csv(runtime.consent, runtime.engine, path, LIST.slug)
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        list_id = session.scalar(select(Issue.list_id)) or 1
        rows = [
            {
                "list_id": list_id,
                "number": n,
                "status": "sent",
                "subject": f"Issue {n}",
                "preheader": "",
                "introduction": "",
                "highlight_label": "Highlight",
                "issue_date": date(2025, 1, 1) + timedelta(days=n),
                "gathered_until": now,
                "created_at": now,
                "updated_at": now,
                "sent_at": now,
            }  # fmt: skip
            for n in range(1, ISSUES)
        ]
        session.execute(insert(Issue), rows)
        last = session.scalar(select(Issue.id).order_by(Issue.id.desc()))
        session.execute(  # the latest send: the dashboard counts its 100,000 copies
            update(Issue).where(Issue.id == last).values(updated_at=now + timedelta(minutes=1))
        )
        ids = list(session.scalars(select(Subscriber.id)))
        session.execute(
            insert(Delivery),
            [{"issue_id": last, "subscriber_id": i, "status": "sent", "attempts": 1,
              "queued_at": now, "sent_at": now, "smtp_reply": ""} for i in ids],
        )  # fmt: skip
    with runtime.sessions.begin() as session:
        issue = curation.draft_issue(session, runtime.clock, LIST.slug)
        curation.update_issue(
            session, runtime.clock, issue.id, IssueChanges(introduction="Hello **clusters**.")
        )
        draft_id = issue.id
    UserService(runtime.sessions, runtime.clock).add(
        Actor("bench", "admin"), "ada@example.org", "admin", PASSWORD
    )
    return draft_id


def _median(client: object, url: str, runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        response = client.get(url, follow_redirects=False)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(times)


def main() -> int:
    from starlette.testclient import TestClient

    from mailer.web.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite:///{folder / 'bench.db'}",
            secret_key="benchmark-secret-key-0123456789abcdef",
            smtp_url="smtp://127.0.0.1:9",
        )
        runtime = Runtime.build(settings, clock=FrozenClock(), upgrade=True)
        started = time.perf_counter()
        draft_id = _seed(runtime, folder)
        print(
            f"seeded {READERS:,} readers, {ISSUES} issues in {time.perf_counter() - started:.0f} s"
        )
        with TestClient(create_app(runtime), base_url="http://127.0.0.1:8000") as client:
            form = client.get("/admin/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token
            client.post("/admin/login", data={"email": "ada@example.org", "password": PASSWORD,
                                              "csrf_token": token.group(1)})  # fmt: skip
            report = f"/admin/audit/report?list={LIST.slug}&at=2026-01-05T09:00"
            start = time.perf_counter()
            first = client.get(report, follow_redirects=False)
            asked = time.perf_counter() - start
            assert 'data-testid="report-preparing"' in first.text
            while 'data-testid="report-counts"' not in client.get(report).text:
                time.sleep(0.1)
            ready = time.perf_counter() - start
            pages = {
                "GET /healthz (reference)": "/healthz",
                "dashboard": "/admin/dashboard",
                "dashboard: last sends (loaded after)": "/admin/dashboard/sends",
                "issue editor": f"/admin/issues/{draft_id}",
                "subscriber search (prefix)": "/admin/subscribers?q=reader0500",
                "subscriber page 100 (keyset)": "/admin/subscribers?after=reader005000%40x",
                "report at an instant (kept)": report,
            }
            for label, url in pages.items():
                client.get(url)
                took = _median(client, url)
                verdict = "" if label.startswith("GET") else ("ok" if took < GOAL else "SLOW")
                print(f"  {label:38} {took * 1000:8.1f} ms  {verdict}")
            verdict = "ok" if asked < GOAL else "SLOW"
            label = "report, first request (replay starts)"
            print(f"  {label:38} {asked * 1000:8.1f} ms  {verdict}")
            label = "report, until the replay is ready"
            print(f"  {label:38} {ready * 1000:8.1f} ms  (a worker process)")
        runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
