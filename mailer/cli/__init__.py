"""The `mailer` command line (Typer): every command group is registered here, in one place.

Each module holds one group's thin commands over the services; a command that
joins another module's group (`issues send`, `consent report`) is added here
too, so that `mailer --help` and `python -m mailer` always list them all.
"""

from __future__ import annotations

import typer

from mailer.cli import (
    archive,
    bounces,
    clusters,
    consent,
    consent_report,
    contributions,
    db,
    delivery,
    demo,
    dkim,
    events,
    feeds,
    issues,
    lists,
    schedules,
    segments,
    serve,
    stats,
    subscribers,
    topics,
    users,
    workers,
)

app = typer.Typer(
    help="GDPR-compliant newsletters: lists, double opt-in, provable consent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command()(serve.serve)
app.command("scheduler")(serve.scheduler)
app.command()(demo.demo)
app.add_typer(db.app, name="db")
app.add_typer(lists.app, name="lists")
app.add_typer(subscribers.app, name="subscribers")
app.add_typer(consent.app, name="consent")
consent.app.command("receipt")(consent_report.receipt_command)
consent.app.command("report")(consent_report.report)
app.add_typer(feeds.app, name="feeds")
app.add_typer(events.app, name="events")
app.add_typer(issues.app, name="issues")
issues.app.command("send")(delivery.send)
app.add_typer(bounces.app, name="bounces")
app.add_typer(delivery.audit_app, name="audit")
app.add_typer(schedules.app, name="schedules")
# issue 14: the archive, contributions, an issue's figures
lists.app.command("edit")(archive.lists_edit)
issues.app.command("withhold")(archive.withhold)
issues.app.command("stats")(stats.stats)
app.add_typer(contributions.app, name="contributions")
app.add_typer(users.app, name="users")
app.add_typer(dkim.app, name="dkim")
app.command("worker")(workers.worker)
app.add_typer(workers.app, name="workers")
issues.app.command("delivery")(workers.delivery)
# issue 13
app.add_typer(clusters.app, name="clusters")
app.add_typer(segments.app, name="segments")
app.add_typer(topics.app, name="topics")
app.add_typer(topics.profiles_app, name="profiles")
events.app.command("survey")(events.events_survey)


def main() -> None:
    app()
