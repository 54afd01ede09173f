"""`mailer demo`: the whole service end to end on embedded defaults.

Everything happens for real: a SQLite database under ./demo/, an aiosmtpd server
on a free loopback port writing each mail it receives to ./demo/outbox/, and the
web app on uvicorn on another loopback port, driven over HTTP as readers would.
Only time is accelerated: the clock jumps to the schedule's lead time and slot.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from rich.console import Console
from rich.table import Table

from consent import audit, verification
from consent.clock import FrozenClock
from consent.lists import create_list
from mailer.accounts.oplog import Actor
from mailer.accounts.users import UserService
from mailer.app.settings import Settings
from mailer.app.wiring import Runtime
from mailer.cadence import cron
from mailer.cadence.schedules import ScheduleSpec
from mailer.clicks.stats import issue_stats
from mailer.content import curation
from mailer.content.publication import set_publication
from mailer.delivery import campaigns
from mailer.delivery.audit import audit_deliveries
from mailer.delivery.previews import write_preview
from mailer.demo import clusters as demo_clusters
from mailer.demo.content import add_demo_sources, curate_demo_issue
from mailer.demo.data import CLUSTER_NEWS, CONTRIBUTION, READERS, reader_address
from mailer.demo.infra import Outbox, WebServer, free_port, link, post_form

EDITOR = "editor@example.org"
SLUG = CLUSTER_NEWS.slug


def run_demo(directory: str, console: Console, serve: bool = False) -> int:
    root = Path(directory).resolve()
    if root.exists():
        console.print(f"[bold]Starting clean:[/] removing the previous demo in {root}")
        shutil.rmtree(root)
    else:
        console.print(f"[bold]Starting:[/] a new demo in {root}")
    (root / "outbox").mkdir(parents=True)
    outbox = Outbox(root / "outbox")
    smtp = Controller(outbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    web_port = free_port()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite:///{root / 'mailer.db'}",
        smtp_url=f"smtp://127.0.0.1:{smtp.port}",
        base_url=f"http://127.0.0.1:{web_port}",
        secret_key=secrets.token_urlsafe(32),
        MAILER_FROM="Cyberwatching.eu Cluster News <newsletter@example.org>",
        subscribe_rate="1000/minute",
        concurrency=4,
        rate=500,
    )
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    runtime = Runtime.build(settings, clock=clock, upgrade=True)
    started = time.monotonic()
    try:
        return Demo(runtime, clock, root, outbox, web_port, console).run(started, serve)
    finally:
        runtime.close()
        smtp.stop()


class Demo:
    def __init__(
        self,
        runtime: Runtime,
        clock: FrozenClock,
        root: Path,
        outbox: Outbox,
        web_port: int,
        console: Console,
    ) -> None:
        self.rt, self.clock, self.root, self.outbox = runtime, clock, root, outbox
        self.web_port, self.say = web_port, console.print
        self.console = console
        self.base = runtime.settings.base_url

    def run(self, started: float, serve: bool = False) -> int:
        from mailer.web.app import create_app

        with self.rt.sessions.begin() as session:
            create_list(session, self.rt.clock, CLUSTER_NEWS)
            set_publication(session, self.rt.clock, SLUG, count_clicks=True)
        self.say(
            f"[bold]List[/] {CLUSTER_NEWS.name} ({SLUG}), consent text v1; public archive on,"
            " clicks counted per link and day (never who clicked)"
        )
        events = add_demo_sources(self.rt, SLUG, self.root)
        self.say(f"[bold]Content[/] 2 sample feeds and {events} events from demo_content/")
        self.catalogue()
        readers = [(f"{f} {last}", reader_address(f, last)) for f, last, _c, _k in READERS]
        self.readers = readers
        with WebServer(create_app(self.rt), self.web_port), httpx.Client(timeout=30) as http:
            confirmed = self.subscribe(http, readers)
            self.contribute(http)
            issue_id = self.schedule_and_send()
            self.clock.advance(hours=2)  # readers open the issue a little later
            self.click(http, confirmed)
            self.leave_and_erase(http, confirmed)
            self.archive(http)
        self.summary(issue_id)
        self.workspace_users()
        self.segmented()
        self.say(f"Done in {time.monotonic() - started:.1f} s")
        if serve:
            with WebServer(create_app(self.rt), self.web_port):
                self.say(
                    f"[bold]Serving[/] the workspace at {self.base}/admin/login"
                    f" (mail lands in {self.root / 'outbox'}); Ctrl-C stops it"
                )
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    self.say("stopped")
        return 0

    def workspace_users(self) -> None:
        """One editor and one auditor for the web workspace, their passwords shown once."""
        users = UserService(self.rt.sessions, self.rt.clock)
        demo = Actor("demo", "admin")
        for email, role in (("editor@example.org", "editor"), ("auditor@example.org", "auditor")):
            _view, password = users.add(demo, email, role)
            self.say(f"[bold]Workspace {role}:[/] {email}  password: {password}")
        self.say(
            f"Log in at {self.base}/admin/login while the service runs"
            " (`mailer demo --serve` keeps it running)."
        )

    def catalogue(self) -> None:
        """Issue 13: the catalogue, the form's questions and topics, the month's cluster."""
        found = demo_clusters.set_up(self.rt, SLUG)
        self.say(
            f"[bold]Catalogue[/] {found.clusters} clusters in {found.countries} countries from"
            f" the seed's Annex A, {found.badged} with the priority badge; no contact person"
            " imported"
        )
        labels = ", ".join(
            f"{label} ({section})" for _s, label, _a, section in demo_clusters.TOPICS
        )
        self.say(f"[bold]Topics[/] {labels}; the form also asks organisation and country")

    def month(self) -> None:
        """The month's cluster by the rule, over the news just fetched (issue 13)."""
        chosen = demo_clusters.month_of_now(self.rt)
        self.say(
            f"[bold]Cluster of the month[/] {chosen['month']}: {chosen['cluster']}, by the rule"
            f" ({chosen['reason']})"
        )

    def segmented(self) -> None:
        found, view = demo_clusters.segmented_schedule(self.rt, SLUG)
        self.say(
            f"[bold]Segment[/] {found.segment!r} (badged clusters outside Spain):"
            f" {found.reachable} reader(s) would receive it now, {found.matching} match"
        )
        self.say(
            f"[bold]Segmented schedule[/] {view.id}: monthly on the 1st, 09:00 Europe/Madrid,"
            f" 48 h lead, for the segment {view.segment!r}; next slot {view.next_slot}"
        )

    def subscribe(self, http: httpx.Client, readers: list[tuple[str, str]]) -> list[str]:
        for index, (name, address) in enumerate(readers):
            _first, _last, cluster, country = READERS[index]
            form = {"email": address, "name": name, "consent": "yes"}
            form.update(demo_clusters.answers(index, cluster, country))
            post_form(http, f"{self.base}/subscribe/{SLUG}", form).raise_for_status()
        confirmers = [address for _name, address in readers[: len(readers) * 3 // 4]]
        for address in confirmers:
            [mail] = self.outbox.mails_to(address)
            post_form(http, link(mail, "confirm"), {}).raise_for_status()
        self.say(
            f"[bold]Double opt-in[/] {len(readers)} readers subscribed through the web form;"
            f" {len(confirmers)} confirmed, {len(readers) - len(confirmers)} never do"
        )
        return confirmers

    def contribute(self, http: httpx.Client) -> None:
        """A cluster sends its news in; its contact confirms; the editor accepts it."""
        contact = CONTRIBUTION["contact"]
        form = {**CONTRIBUTION, "website": ""}
        sent = post_form(http, f"{self.base}/contribute/{SLUG}", form)
        assert sent.status_code == 202, sent.status_code
        [mail] = self.outbox.mails_to(contact)
        confirmed = post_form(http, link(mail, "contribute/confirm"), {})
        assert confirmed.status_code == 200, confirmed.status_code
        [pending] = self.rt.contributions.listing(SLUG, "pending")
        _view, decided = self.rt.contributions.accept(pending.id)
        asyncio.run(self.rt.mail.deliver(decided))
        self.say(
            f"[bold]Contribution[/] {CONTRIBUTION['organisation']} sent in news through"
            f" /contribute/{SLUG}; {contact} confirmed by the mailed link's button; the"
            " editor accepted it for the next issue, and the contact was told"
        )

    def schedule_and_send(self) -> int:
        view = self.rt.schedules.add(
            ScheduleSpec(
                list_slug=SLUG,
                cron="0 9 * * MON",
                timezone="Europe/Madrid",
                lead=timedelta(hours=24),
                approval="required",
                editors=(EDITOR,),
            )
        )
        self.say(
            f"[bold]Schedule[/] weekly, Mondays 09:00 Europe/Madrid, 24 h lead, approval"
            f" required; next slot {view.next_slot}"
        )
        slot_at = cron.next_slot(view.cron, view.timezone, self.clock.now()).at
        self.clock.set(slot_at - timedelta(hours=24))
        outcome = asyncio.run(self.rt.schedules.tick())
        [drafted] = [v for v in outcome if v.status == "drafted"]
        assert drafted.issue_id is not None
        issue_id = drafted.issue_id
        self.say(
            f"[bold]Clock → {self.clock.now():%Y-%m-%d %H:%M} UTC[/] (24 h before the slot):"
            f" issue {issue_id} drafted, the editor was mailed a preview link"
        )
        self.month()
        curate_demo_issue(self.rt, issue_id)
        with self.rt.sessions.begin() as session:
            curation.approve_issue(session, self.rt.clock, self.rt.renderer, issue_id)
        self.files = write_preview(self.rt.preview(issue_id), self.root / "preview")
        self.say(
            "[bold]Editor[/] wrote the introduction and approved; the cluster of the month's"
            " block came from the catalogue"
        )
        self.clock.set(slot_at)
        outcome = asyncio.run(self.rt.schedules.tick())
        statuses = ", ".join(f"{v.slot} {v.status}" for v in outcome)
        with self.rt.sessions() as session:
            self.sent_copies = campaigns.status(session, issue_id).counts.get("sent", 0)
        self.say(f"[bold]Clock → {self.clock.now():%Y-%m-%d %H:%M} UTC[/] (the slot): {statuses}")
        return issue_id

    def click(self, http: httpx.Client, confirmed: list[str]) -> None:
        """A few readers follow links of the newsletter (the redirect counts, per link)."""
        clicks = 0
        for n, address in enumerate(confirmed[2:8]):
            newsletter = self.outbox.mails_to(address)[-1]
            counted = re.findall(rf"{re.escape(self.base)}/r/[^\s<>]+", _text(newsletter))
            for url in counted[: 1 + n % 3]:
                answer = http.get(url, follow_redirects=False)
                assert answer.status_code == 302, answer.status_code
                clicks += 1
        self.say(f"[bold]Clicks[/] {clicks} links followed by 6 readers through /r/...: counted")

    def archive(self, http: httpx.Client) -> None:
        """The public archive: the issue as readers got it, with nothing of any of them."""
        url = f"{self.base}/archive/{SLUG}"
        listing, page = http.get(url), http.get(f"{url}/1")
        assert listing.status_code == page.status_code == 200
        assert not any(name in page.text for name, _ in self.readers)
        (self.root / "archive").mkdir(exist_ok=True)
        self.archived = self.root / "archive" / f"{SLUG}-1.html"
        self.archived.write_text(page.text, encoding="utf-8")
        self.archive_url = url
        self.say(
            f"[bold]Public archive[/] {url}: issue 1 as readers got it, no reader's name,"
            f" address or link in it (HTTP {page.status_code}); Atom feed at {url}/feed.xml"
        )

    def leave_and_erase(self, http: httpx.Client, confirmed: list[str]) -> None:
        leaver, eraser = confirmed[0], confirmed[1]
        newsletter = self.outbox.mails_to(leaver)[-1]
        one_click = newsletter["List-Unsubscribe"].strip("<>")
        response = http.post(
            one_click,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.status_code
        self.say(f"[bold]One-click unsubscribe[/] by {leaver} from the newsletter: HTTP 200")
        seen = len(self.outbox.mails_to(eraser))
        welcome = self.outbox.mails_to(eraser)[1]
        # The preferences page mails a short-lived link to the address; it never opens
        # the data itself (newsletters are forwarded).
        preferences_url = link(welcome, "preferences")
        asked = post_form(http, preferences_url, {}, action=f"{preferences_url}/data-link")
        assert asked.status_code == 200, asked.status_code
        access = self.outbox.next_mail_to(eraser, seen)
        me_token = link(access, "me").rsplit("/", 1)[1]
        erased = post_form(http, f"{self.base}/me/{me_token}/erase", {})
        assert erased.status_code == 200, erased.status_code
        self.say(
            f"[bold]Erasure[/] requested by {eraser} from the self-service link mailed to them:"
            " done"
        )

    def figures(self, issue_id: int) -> None:
        """`mailer issues stats N`: from the ledgers and the click counters, nobody named."""
        with self.rt.sessions() as session:
            stats = issue_stats(session, issue_id)
        rate = f"{stats.complaint_rate:.1%}" if stats.complaint_rate is not None else "n/a"
        table = Table(title="The issue's figures (mailer issues stats 1; now, after the erasure)")
        table.add_column("figure")
        table.add_column("value", justify="right")
        table.add_row("copies sent", str(stats.copies_sent))
        table.add_row("bounces", str(stats.bounces))
        table.add_row("complaints", f"{stats.complaints} ({rate}; Gmail's line 0.3%)")
        table.add_row("unsubscribes", str(stats.unsubscribes))
        table.add_row("clicks", str(stats.total_clicks))
        for followed in sorted(stats.clicks, key=lambda c: -c.clicks)[:3]:
            table.add_row(f"  {followed.url[:60]}", str(followed.clicks))
        self.console.print(table)

    def summary(self, issue_id: int) -> None:
        now = self.clock.now()
        with self.rt.sessions() as session:
            counts = audit.summary(session, now)[SLUG]
            issue = curation.get_issue(session, issue_id)
            deliveries = campaigns.status(session, issue_id)
            verified = verification.verify(session)
            audited = audit_deliveries(session, issue_id)
            subject, number, status = issue.subject, issue.number, issue.status.value

        table = Table(title="Subscribers by state (from the consent ledger)")
        table.add_column("state")
        table.add_column("count", justify="right")
        for state, value in counts.record().items():
            table.add_row(state, str(value))
        self.console.print(table)

        table = Table(title="The issue")
        for column in ("number", "subject", "status", "sent"):
            table.add_column(column)
        table.add_row(str(number), subject, status, f"{self.sent_copies} copies")
        self.console.print(table)

        table = Table(title="Deliveries (now; an erasure removes the person's rows)")
        table.add_column("status")
        table.add_column("count", justify="right")
        for state, value in sorted(deliveries.counts.items()):
            table.add_row(state, str(value))
        self.console.print(table)

        self.figures(issue_id)

        ok = "[green]verified[/]" if verified.ok else f"[red]BROKEN[/] {verified.breaks[0]}"
        self.say(f"[bold]Consent ledger:[/] {verified.checked} events, {ok}")
        passed = "[green]passed[/]" if not audited.violations else "[red]FAILED[/]"
        self.say(
            f"[bold]Audit of deliveries:[/] {audited.checked} checked,"
            f" {len(audited.violations)} without consent: {passed}"
        )
        self.say(f"[bold]Rendered issue:[/] {self.files.html}")
        self.say(f"                {self.files.text}")
        self.say(f"                {self.files.eml}")
        self.say(f"[bold]Archive copy:[/]   {self.archived}")
        self.say(f"                {self.archive_url} (while a server runs on this database)")
        self.say(f"[bold]Mails captured:[/] {len(self.outbox.paths)} in {self.root / 'outbox'}")
        self.say(f"[bold]Database:[/] {self.root / 'mailer.db'}")


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
