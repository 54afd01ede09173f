"""Moderation in the workspace over HTTP: contributions (issue 14) and proposals to the
cluster catalogue (issue 13) — what the editor sees, what lands in the database, who is told."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from starlette.testclient import TestClient

from consent.clock import FrozenClock
from mailer.accounts.models import Operation
from mailer.app.wiring import Runtime
from mailer.clusters import catalogue, proposals
from mailer.clusters.catalogue import ClusterSpec
from mailer.content import curation
from mailer.contributions.mails import ConfirmContribution
from mailer.contributions.submission import Submission
from tests.conftest import SMTPServer
from tests.helpers import parts
from tests.web.admin.conftest import ROOT, csrf_of

Client = Callable[[str | None], TestClient]
CONTACT = "press@cyberwallonia.example.org"
HOSTILE = "&lt;script&gt;alert(1)&lt;/script&gt; Lab week"  # stored as the text <script>...
NEWS = Submission(
    kind="news",
    title="CyberWallonia opens its testing lab",
    organisation="CyberWallonia",
    contact=CONTACT,
    link="https://cyberwallonia.example.org/lab",
    summary="The lab is open to SMEs of the region.",
)


def sent_in(runtime: Runtime, submission: Submission, confirm: bool = True) -> int:
    """A contribution sent in through the form's service, confirmed by its contact."""
    [mail] = runtime.contributions.submit("cyber-news", submission)
    assert isinstance(mail, ConfirmContribution)
    if not confirm:
        return runtime.contributions.listing(status="unconfirmed")[-1].id
    view, _already = runtime.contributions.confirm(mail.token)
    return view.id


def logged(runtime: Runtime) -> list[tuple[str, str, str, str]]:
    with runtime.sessions() as session:
        return [
            (o.actor, o.action, o.object_type, o.object_id)
            for o in session.scalars(select(Operation).order_by(Operation.id))
            if o.actor != ROOT.email
        ]


def test_g1_an_editor_accepts_and_rejects_contributions_and_their_contacts_are_told(
    runtime: Runtime,
    make_list: Callable[..., str],
    staff_client: Client,
    users: dict[str, str],
    smtp_server: SMTPServer,
    clock: FrozenClock,
) -> None:
    make_list()
    news = sent_in(runtime, NEWS)
    off_topic = sent_in(runtime, Submission(**{**NEWS.__dict__, "title": "Buy our product",
                                                "contact": "sales@example.com"}))  # fmt: skip
    hostile = sent_in(runtime, Submission(**{**NEWS.__dict__, "title": HOSTILE,
                                              "contact": "x@example.net"}))  # fmt: skip
    unconfirmed = sent_in(
        runtime,
        Submission(**{**NEWS.__dict__, "title": "Never confirmed", "contact": "u@example.net"}),
        confirm=False,
    )
    assert runtime.contributions.show(hostile).title.startswith("<script>alert(1)</script>")
    smtp_server.received.clear()
    editor = staff_client("editor")

    queue = editor.get("/admin/contributions")
    assert queue.status_code == 200
    for shown in (
        "CyberWallonia opens its testing lab",
        "Buy our product",
        "CyberWallonia",
        "https://cyberwallonia.example.org/lab",
        "open to SMEs of the region",
    ):
        assert shown in queue.text, shown
    assert "Never confirmed" not in queue.text  # nothing reaches the editors before its contact
    assert f"/admin/contributions/{unconfirmed}" not in queue.text
    assert "<script>alert(1)" not in queue.text  # escaped, wherever a contribution is shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Lab week" in queue.text
    detail = editor.get(f"/admin/contributions/{hostile}")
    assert "<script>alert(1)" not in detail.text and "&lt;script&gt;alert(1)" in detail.text
    assert runtime.contributions.show(news).status == "pending"  # a GET decides nothing (G1)

    token = csrf_of(queue.text)
    accepted = editor.post(f"/admin/contributions/{news}/accept", data={"csrf_token": token},
                           follow_redirects=False)  # fmt: skip
    assert accepted.status_code == 303
    assert accepted.headers["location"] == "/admin/contributions?done=accepted"
    assert "its contact was told" in editor.get(accepted.headers["location"]).text
    assert runtime.contributions.show(news).status == "accepted"

    no_reason = editor.post(f"/admin/contributions/{off_topic}/reject",
                            data={"csrf_token": token, "reason": " "})  # fmt: skip
    assert no_reason.status_code == 422 and "the reason is required" in no_reason.text
    assert runtime.contributions.show(off_topic).status == "pending"
    rejected = editor.post(
        f"/admin/contributions/{off_topic}/reject",
        data={"csrf_token": token, "reason": "Not about clusters"},
    )
    assert rejected.status_code == 200 and "its contact was told why" in rejected.text
    assert runtime.contributions.show(off_topic).status == "rejected"
    assert runtime.contributions.show(off_topic).reason == "Not about clusters"
    again = editor.post(f"/admin/contributions/{news}/accept", data={"csrf_token": token})
    assert again.status_code == 409 and "accepted already" in again.text
    never = editor.post(f"/admin/contributions/{unconfirmed}/accept", data={"csrf_token": token})
    assert never.status_code == 409 and "not confirmed by its contact" in never.text
    assert editor.get("/admin/contributions/999").status_code == 404

    told = {r.rcpt_tos[0]: parts(r.message)[0] for r in smtp_server.received}
    assert sorted(told) == [CONTACT, "sales@example.com"]  # the stored contacts, nobody else
    assert "accepted your contribution" in told[CONTACT]
    assert "did not accept" in told["sales@example.com"]
    assert "Not about clusters" in told["sales@example.com"]

    clock.advance(minutes=5)
    with runtime.sessions.begin() as session:  # the next draft gathers the accepted item
        issue_id = curation.draft_issue(session, runtime.clock, "cyber-news").id
    shown = runtime.preview(issue_id)
    for part in (shown.html, shown.text):
        assert "CyberWallonia opens its testing lab" in part
        assert "Contributed by CyberWallonia" in part
        assert "Buy our product" not in part
    listed = editor.get("/admin/contributions").text
    assert (
        f'data-testid="decided-{news}"' in listed and f'data-testid="decided-{off_topic}"' in listed
    )
    assert logged(runtime) == [
        (users["editor"], "contribution accepted", "contribution", str(news)),
        (users["editor"], "contribution rejected", "contribution", str(off_topic)),
    ]


def test_an_auditor_and_a_post_without_the_token_change_nothing(
    runtime: Runtime,
    make_list: Callable[..., str],
    staff_client: Client,
    smtp_server: SMTPServer,
) -> None:
    make_list()
    news = sent_in(runtime, NEWS)
    smtp_server.received.clear()
    auditor, editor = staff_client("auditor"), staff_client("editor")
    auditor_token = csrf_of(auditor.get("/admin/audit").text)

    assert auditor.get("/admin/contributions").status_code == 403
    assert auditor.get(f"/admin/contributions/{news}").status_code == 403
    for action, data in (("accept", {}), ("reject", {"reason": "no"})):
        answer = auditor.post(f"/admin/contributions/{news}/{action}",
                              data={"csrf_token": auditor_token, **data})  # fmt: skip
        assert answer.status_code == 403 and "Not allowed" in answer.text
    for token in ("", auditor_token):  # no token, or another person's
        for action, data in (("accept", {}), ("reject", {"reason": "no"})):
            answer = editor.post(f"/admin/contributions/{news}/{action}",
                                 data={"csrf_token": token, **data})  # fmt: skip
            assert answer.status_code == 403 and "This form has expired" in answer.text
    assert runtime.contributions.show(news).status == "pending"
    assert smtp_server.received == [] and logged(runtime) == []


def _catalogue(runtime: Runtime) -> dict[str, dict[str, object]]:
    with runtime.sessions() as session:
        return {c.name: catalogue.record(c) for c in catalogue.find(session, catalogue.Filters())}


def test_cluster_proposals_change_the_catalogue_only_when_accepted(
    runtime: Runtime, staff_client: Client, users: dict[str, str]
) -> None:
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        catalogue.upsert(session, now, ClusterSpec("Cap Digital", "FR", sectors=("Automotive",)))
        change = proposals.propose(
            session, now,
            ClusterSpec("Cap Digital", "France", sectors=("Automotive", "Robotics"),
                        website="www.capdigital.example.org"),
            note="We added robotics",
        ).id  # fmt: skip
        new = proposals.propose(session, now, ClusterSpec("Hostile <b>Cluster</b>", "ES")).id
        other = proposals.propose(session, now, ClusterSpec("Minalogic", "FR")).id
    editor, auditor = staff_client("editor"), staff_client("auditor")
    assert auditor.get("/admin/clusters/proposals").status_code == 403

    listed = editor.get("/admin/clusters/proposals")
    assert listed.status_code == 200
    shown = listed.text
    assert "A change to" in shown and "New cluster" in shown and "We added robotics" in shown
    assert "Robotics" in shown and "https://www.capdigital.example.org" in shown  # what changes
    assert "Hostile &lt;b&gt;Cluster&lt;/b&gt;" in shown and "<b>Cluster</b>" not in shown
    assert _catalogue(runtime)["Cap Digital"]["sectors"] == ["Automotive"]  # nothing yet
    token = csrf_of(shown)

    refused = editor.post(f"/admin/clusters/proposals/{new}/reject",
                          data={"csrf_token": token, "reason": "Not a cluster"},
                          follow_redirects=False)  # fmt: skip
    assert refused.status_code == 303
    assert set(_catalogue(runtime)) == {"Cap Digital"}  # a rejected proposal changes nothing
    forged = editor.post(f"/admin/clusters/proposals/{other}/accept", data={"csrf_token": ""})
    assert forged.status_code == 403 and set(_catalogue(runtime)) == {"Cap Digital"}

    accepted = editor.post(f"/admin/clusters/proposals/{change}/accept",
                           data={"csrf_token": token})  # fmt: skip
    assert accepted.status_code == 200 and "entry is changed" in accepted.text
    entry = _catalogue(runtime)["Cap Digital"]
    assert entry["sectors"] == ["Automotive", "Robotics"]
    assert entry["website"] == "https://www.capdigital.example.org"
    twice = editor.post(f"/admin/clusters/proposals/{change}/accept", data={"csrf_token": token})
    assert twice.status_code == 404 and "no pending proposal" in twice.text
    assert f'data-testid="proposal-{change}"' not in twice.text  # decided ones leave the queue
    assert f'data-testid="proposal-{other}"' in twice.text
    with runtime.sessions() as session:
        assert [p.id for p in proposals.pending(session)] == [other]
    assert logged(runtime) == [
        (users["editor"], "proposal rejected", "cluster proposal", str(new)),
        (users["editor"], "proposal accepted", "cluster proposal", str(change)),
    ]
