"""The daily jobs on a schedule (`loyalty scheduler`, docs/OPERATIONS.md): tiers review,
miles expiry and care refresh, each once per programme day (the day in
LOYALTY_TIMEZONE), however many schedulers run against the database.

- Lease: a row of job_run per (job, day) (loyalty.models.JobRun, unique on both). A
  scheduler owns a run by INSERTing that row, or, when the row is there but not DONE and
  its lease has lapsed (its holder died, or the run failed and waits for a retry), by a
  conditional UPDATE that names the lapsed lease; the statement's row count says who won.
  No SELECT ... FOR UPDATE (a no-op on SQLite): the same statements on SQLite and
  PostgreSQL. The holder renews its lease while the job runs.
- Order: days in order, and for each day the jobs in JOBS order (the care worklist
  after the tiers it reads). A tick goes from the day after the last one fully done (at
  most ``catch_up_days`` back; on an empty table, today) up to today, and stops at the
  first run it does not own or that fails: a later day never runs before an earlier one.
- Records: every run keeps its job, day, status, owner, attempts, start and end, the
  summary line (or the error) and the counts. ``on_run`` is called with each finished
  run (a metrics hook: loyalty.models.JobRun rows, status and durations).
- Time: ``clock`` gives the current instant (Settings.clock in tests); leases compare
  the schedulers' clocks, so the machines running them keep their clocks in sync (NTP).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError

from api.settings import Settings
from loyalty.models import JobRun, JobRunStatus
from loyalty.rules import Rules
from members.background import stop_task, wait_stop

# A job: (settings, rules, day, checkpoint) -> (summary line, counts). The job calls
# checkpoint(done, total) between its batches, outside any transaction (the jobs' progress
# callback): there it raises JobStopped once the scheduler is asked to stop.
Checkpoint = Callable[[int, int], None]
Job = Callable[[Settings, Rules, date, Checkpoint], Awaitable[tuple[str, dict[str, int]]]]


class JobStopped(Exception):
    """Raised by a job's checkpoint when the scheduler stops (shutdown): the job ends
    between two batches, its transactions ended, and its run is left to be resumed."""


async def _tiers_review(settings: Settings, rules: Rules, day: date, checkpoint: Checkpoint) -> tuple[str, dict[str, int]]:
    from loyalty.tiers import review_tiers

    summary = await review_tiers(day, rules=rules, progress=checkpoint)
    if summary.events and settings.redis_url:
        from loyalty.feed import announce_to_servers

        await announce_to_servers(settings.redis_url)
    counts = {k: v for k, v in asdict(summary).items() if k != "sample"}
    return (f"{summary.examined} examined, {summary.retained} retained, {summary.downgraded} downgraded, "
            f"{summary.events} tier changes"), counts


async def _miles_expire(settings: Settings, rules: Rules, day: date, checkpoint: Checkpoint) -> tuple[str, dict[str, int]]:
    from loyalty.jobs import expire_miles

    summary = await expire_miles(day, progress=checkpoint)
    counts = {k: v for k, v in asdict(summary).items() if k != "sample"}
    return f"{summary.miles} miles expired in {summary.entries} entries for {summary.members} members", counts


async def _care_refresh(settings: Settings, rules: Rules, day: date, checkpoint: Checkpoint) -> tuple[str, dict[str, int]]:
    from care.calls import refresh_care_due
    from care.segments import refresh_segments

    due = await refresh_care_due(rules, day, checkpoint)
    summary = await refresh_segments(rules, day, timezone=settings.tz, progress=checkpoint)
    counts = {"rechecked": due.members, "due": due.due, "members": summary.members, "offices": summary.offices}
    return f"{due.members} rechecked ({due.due} due a call), {summary.members} members in {summary.offices} offices", counts


# The daily jobs, in the order they run for a day.
JOBS: dict[str, Job] = {
    "tiers-review": _tiers_review,
    "miles-expire": _miles_expire,
    "care-refresh": _care_refresh,
}


@dataclass(frozen=True)
class RunRecord:
    """One finished run, as ``on_run`` receives it (and job_run keeps it)."""

    job: str
    day: date
    status: JobRunStatus
    owner: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    counts: dict[str, int] | None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def line(self) -> str:
        return f"{self.job} {self.day}: {self.status.value} in {self.seconds:.1f}s: {self.outcome}"


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """Runs JOBS once per programme day; see the module's docstring."""

    def __init__(
        self,
        settings: Settings,
        rules: Rules,
        *,
        jobs: dict[str, Job] | None = None,
        owner: str | None = None,
        lease: timedelta = timedelta(minutes=10),
        retry_after: timedelta = timedelta(minutes=15),
        catch_up_days: int = 31,
        on_run: Callable[[RunRecord], None] | None = None,
    ) -> None:
        if catch_up_days < 1:
            raise ValueError("catch_up_days must be at least 1")
        self.settings = settings
        self.rules = rules
        self.jobs = JOBS if jobs is None else jobs
        self.owner = owner or default_owner()
        self.lease = lease
        self.retry_after = retry_after
        self.catch_up_days = catch_up_days
        self.on_run = on_run

    def now(self) -> datetime:
        return self.settings.now()

    def today(self) -> date:
        return self.settings.today()

    async def first_day(self) -> date:
        """The day after the last day on which every job is done; today on an empty table;
        never more than catch_up_days back."""
        today = self.today()
        earliest = today - timedelta(days=self.catch_up_days - 1)
        lasts = [
            await JobRun.filter(job=job, status=JobRunStatus.DONE).order_by("-day").first().values_list("day", flat=True)
            for job in self.jobs
        ]
        start = min(today if last is None else last + timedelta(days=1) for last in lasts)
        # A run not done (failed, or held) before that: a job whose only run failed.
        pending = await (JobRun.filter(job__in=list(self.jobs), day__gte=earliest, status__not=JobRunStatus.DONE)
                         .order_by("day").first().values_list("day", flat=True))
        if pending is not None:
            start = min(start, pending)
        return max(start, earliest)

    async def acquire(self, job: str, day: date) -> bool:
        """Own the run of ``job`` for ``day``: insert its row, or take over a lapsed lease."""
        now = self.now()
        try:
            await JobRun.create(job=job, day=day, status=JobRunStatus.RUNNING, owner=self.owner,
                                lease_until=now + self.lease, started_at=now)
            return True
        except IntegrityError:
            pass
        row = await JobRun.filter(job=job, day=day).first().values("status", "lease_until", "attempts")
        if row is None or row["status"] == JobRunStatus.DONE or row["lease_until"] >= now:
            return False
        # Conditional on the lease having lapsed and on the attempt read above: a takeover
        # increments attempts, so of two schedulers taking over the same run one matches.
        taken = await JobRun.filter(
            job=job, day=day, status__not=JobRunStatus.DONE, lease_until__lt=now, attempts=row["attempts"]
        ).update(status=JobRunStatus.RUNNING, owner=self.owner, lease_until=now + self.lease, started_at=now,
                 finished_at=None, attempts=row["attempts"] + 1)
        return taken == 1

    async def _renew(self, job: str, day: date, stop: asyncio.Event) -> None:
        while not await wait_stop(stop, self.lease.total_seconds() / 3):
            await JobRun.filter(job=job, day=day, owner=self.owner, status=JobRunStatus.RUNNING).update(
                lease_until=self.now() + self.lease)

    async def run_one(self, job: str, day: date, stop: asyncio.Event | None = None) -> RunRecord | None:
        """Run an owned job for its day and record how it ended; None when ``stop`` was
        set and the job stopped at a checkpoint: its run stays RUNNING with its lease
        given back, for the next scheduler (or this one after a restart) to take over."""
        started = self.now()
        stop = stop or asyncio.Event()

        def checkpoint(done: int, total: int) -> None:
            if stop.is_set():
                raise JobStopped(f"stopped after {done} of {total}")

        renewing = asyncio.Event()
        renewal = asyncio.create_task(self._renew(job, day, renewing))
        try:
            outcome, counts = await self.jobs[job](self.settings, self.rules, day, checkpoint)
            status = JobRunStatus.DONE
        except JobStopped as stopped:
            status = None
            outcome = str(stopped)
        except Exception as error:  # noqa: BLE001 - recorded and retried, the scheduler goes on
            outcome, counts, status = f"{type(error).__name__}: {error}".splitlines()[0], None, JobRunStatus.FAILED
        finally:
            # Stopped, not cancelled: the renewal writes to the database (members.background).
            await stop_task(renewal, renewing)
        if status is None:
            await JobRun.filter(job=job, day=day, owner=self.owner, status=JobRunStatus.RUNNING).update(
                lease_until=self.now() - self.lease, outcome=f"{outcome} (shutdown)")  # lapsed: taken over at once
            return None
        finished = self.now()
        await JobRun.filter(job=job, day=day, owner=self.owner).update(
            status=status, finished_at=finished, outcome=outcome, counts=counts,
            lease_until=finished + (self.retry_after if status is JobRunStatus.FAILED else timedelta(0)),
        )
        record = RunRecord(job, day, status, self.owner, started, finished, outcome, counts)
        if self.on_run is not None:
            self.on_run(record)
        return record

    async def tick(self, stop: asyncio.Event | None = None) -> list[RunRecord]:
        """Run what is due, in order: every job for every day from first_day to today.
        Stops at a run another scheduler holds (it will do the rest) or one that failed,
        and when ``stop`` is set (its job at its next checkpoint)."""
        done: list[RunRecord] = []
        day, today = await self.first_day(), self.today()
        while day <= today:
            for job in self.jobs:
                if stop is not None and stop.is_set():
                    return done
                status = await JobRun.filter(job=job, day=day).first().values_list("status", flat=True)
                if status == JobRunStatus.DONE:
                    continue
                if not await self.acquire(job, day):
                    return done
                record = await self.run_one(job, day, stop)
                if record is None:
                    return done
                done.append(record)
                if record.status is JobRunStatus.FAILED:
                    return done
            day += timedelta(days=1)
        return done

    async def run_forever(self, every: float = 60.0, stop: asyncio.Event | None = None,
                          report: Callable[[str], None] | None = None) -> None:
        """tick() every ``every`` seconds until ``stop`` is set."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                records = await self.tick(stop)
            except Exception as error:  # noqa: BLE001 - a database blip must not end the scheduler
                records = []
                if report:
                    report(f"scheduler: check failed, trying again in {every:g}s: {type(error).__name__}: {error}".splitlines()[0])
            for record in records:
                if report:
                    report(record.line())
            await wait_stop(stop, every)


async def latest_runs(jobs: list[str] | None = None) -> list[RunRecord]:
    """The latest finished run of each job (DONE or FAILED), from job_run: for a metrics
    collector in any server process (last day done, outcome, duration, counts), however
    many schedulers there are and wherever they run."""
    records = []
    for job in jobs or list(JOBS):
        row = await (JobRun.filter(job=job, finished_at__isnull=False).order_by("-day", "-id").first()
                     .values("job", "day", "status", "owner", "started_at", "finished_at", "outcome", "counts"))
        if row is not None:
            records.append(RunRecord(**{**row, "status": JobRunStatus(row["status"])}))
    return records


def with_scheduler(app, scheduler: Scheduler, every: float = 60.0, grace: float = 30.0):
    """The ASGI ``app`` with ``scheduler`` running beside it in the same process, from
    lifespan startup (after the app's own: the ORM is ready) to shutdown (a job under way
    stops at its next checkpoint, between two batches: its run stays RUNNING with the
    lease given back, and another scheduler, or this one after a restart, takes it over;
    the jobs are idempotent). `loyalty serve --scheduler` (LOYALTY_SCHEDULER=1) runs one
    in every worker: the lease still runs each job once a day."""
    log = logging.getLogger("loyalty.scheduler")
    # A batch takes seconds; ``grace`` bounds a shutdown stuck in one (then it is cancelled).
    return with_background(app, lambda stop: scheduler.run_forever(every, stop=stop, report=log.info), grace=grace)


def with_background(app, run: Callable[[asyncio.Event], Awaitable[None]], *, grace: float):
    """The ASGI ``app`` with the task ``run(stop)`` beside it in the same process, from
    lifespan startup (after the app's own: the ORM is ready) until shutdown (the daily
    jobs' scheduler, the webhook dispatcher). At shutdown ``stop`` is set and the task
    has ``grace`` seconds to end on its own; only then is it cancelled.

    Why not cancel at once: see members.background."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        task: asyncio.Task | None = None
        stop = asyncio.Event()

        async def on_send(message):
            nonlocal task
            if message["type"] == "lifespan.startup.complete":
                task = asyncio.create_task(run(stop))
            await send(message)

        async def on_receive():
            message = await receive()
            if message["type"] == "lifespan.shutdown" and task is not None:
                await stop_task(task, stop, grace=grace)
            return message

        await app(scope, on_receive, on_send)

    return wrapped
