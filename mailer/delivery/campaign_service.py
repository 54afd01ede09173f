"""The one owner of campaigns in a process: the CLI, the admin API and the scheduler call it.

Every run of this process is registered here by issue: a second start of an issue
already running is refused at once (and across processes the campaign claim
refuses it: see mailer.delivery.campaigns). Runs started by the API are tasks of
the running event loop (the web server's, where the scheduler runs too), owned
by this service, never threads with loops of their own; `stop` asks every live
run, however it was started, to pause after its in-flight SMTP transactions, and
`wait_idle` waits until they have recorded their state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from mailer.delivery import campaigns
from mailer.delivery.campaigns import CampaignBusy, Summary
from mailer.delivery.models import CampaignState
from mailer.delivery.runner import CampaignRunner, Progress
from mailer.mail.transport import SendResult

log = logging.getLogger(__name__)

MakeRunner = Callable[..., CampaignRunner]


class AlreadyRunning(CampaignBusy):
    """This process is sending the issue already (a slot, a retry job or the API)."""


@dataclass
class LiveRun:
    """A run of this process: its runner (progress), and how it ended once it has."""

    runner: CampaignRunner
    task: asyncio.Task[Summary] | None = None
    summary: Summary | None = None
    error: str | None = None
    done: bool = False


@dataclass
class DeliveryView:
    """Where an issue's delivery stands: the database's summary and this process's run."""

    summary: Summary
    running: bool
    progress: Progress | None = None
    error: str | None = None


@dataclass
class CampaignService:
    """Starts, follows and stops the campaigns of this process, and sends test copies.

    `make_runner(issue_id, **options)` builds one run (the wiring binds it to the
    database, clock, settings and consent service); `send_test(issue_id, address)`
    sends one marked copy.
    """

    sessions: sessionmaker[Session]
    make_runner: MakeRunner
    send_test: Callable[[int, str], Awaitable[SendResult]]
    enqueue: Callable[[int, bool], Awaitable[Queued]] | None = None
    via_workers: bool = False  # the scheduler's sends go to the delivery workers
    runs: dict[int, LiveRun] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Summary]] = field(default_factory=set)

    def _register(self, issue_id: int, **options: object) -> LiveRun:
        current = self.runs.get(issue_id)
        if current is not None and not current.done:
            raise AlreadyRunning(f"issue {issue_id} is being sent by this process already")
        live = self.runs[issue_id] = LiveRun(self.make_runner(issue_id, **options))
        return live

    async def run(
        self,
        issue_id: int,
        *,
        resend_uncertain: bool = False,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> Summary:
        """Run the campaign in the caller's task until it ends (the CLI, the scheduler)."""
        live = self._register(issue_id, resend_uncertain=resend_uncertain, on_progress=on_progress)
        return await self._supervise(issue_id, live)

    def start(self, issue_id: int, *, resend_uncertain: bool = False) -> LiveRun:
        """Start the campaign as a task of the running loop and return at once (the API)."""
        live = self._register(issue_id, resend_uncertain=resend_uncertain)
        task = asyncio.get_running_loop().create_task(
            self._supervise(issue_id, live), name=f"campaign-{issue_id}"
        )
        live.task = task
        self._tasks.add(task)
        task.add_done_callback(self._forget)
        return live

    def _forget(self, task: asyncio.Task[Summary]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("campaign task ended with an error", exc_info=task.exception())

    async def _supervise(self, issue_id: int, live: LiveRun) -> Summary:
        try:
            live.summary = await live.runner.run()
        except Exception as exc:
            live.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            live.done = True
        log.info("issue %s: %s %s", issue_id, live.summary.state, live.summary.counts)
        return live.summary

    async def through_workers(self, issue_id: int) -> bool:
        """The scheduler's send with workers: queue the campaign unless the workers are on it;
        True once it is finished."""
        summary = await asyncio.to_thread(self.status, issue_id)
        if summary.state == CampaignState.FINISHED:
            return True
        if self.enqueue is None:
            raise RuntimeError("no queue wired")
        try:
            await self.enqueue(issue_id, False)
        except CampaignBusy:
            return False  # the workers are sending it (their heartbeat holds the claim)
        return False

    @property
    def live(self) -> list[int]:
        """Issues this process is sending now."""
        return sorted(issue for issue, run in self.runs.items() if not run.done)

    def stop(self, reason: str = "the service is shutting down") -> None:
        """Ask every live run to pause after its in-flight SMTP transactions."""
        for run in self.runs.values():
            if not run.done:
                run.runner.stop(reason)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait for the runs started here to record their state; False if some still run."""
        if not self._tasks:
            return True
        _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        return not pending

    def status(self, issue_id: int) -> Summary:
        """The campaign's summary from the database alone (blocking)."""
        with self.sessions() as session:
            return campaigns.status(session, issue_id)

    def check_sendable(self, issue_id: int) -> None:
        """Raise NotSendable unless the issue exists and is approved (blocking)."""
        with self.sessions() as session:
            campaigns.sendable_issue(session, issue_id)

    async def view(self, issue_id: int) -> DeliveryView:
        """The database's summary (read in a worker thread) and this process's live run.

        Whether the run lives is read before the database: a run writes its final state,
        then marks itself done, so a run seen done has its state written, and a run seen
        live is reported live even if it ends during the read (the next look shows its
        end). Read the other way round, a run ending during the read was reported ended
        with the state it had before ("running")."""
        live = self.runs.get(issue_id)
        running = live is not None and not live.done
        summary = await asyncio.to_thread(self.status, issue_id)
        if live is None:
            return DeliveryView(summary, running=False)
        return DeliveryView(summary, running, live.runner.progress, live.error)


@dataclass
class Queued:
    """A campaign handed to the delivery workers: how many copies in how many batch jobs."""

    issue_id: int
    jobs: int
    rows: int
    uncertain_found: int = 0
    requeued: int = 0
    note: str = ""
