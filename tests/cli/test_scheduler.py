"""The scheduler of the daily jobs (api.scheduler, `loyalty scheduler`): once per
programme day however many schedulers run (a lease row per job and day in job_run),
missed days caught up in order, runs recorded, a failed run retried, a crashed
holder's run taken over. The clock is set by the test (Settings.clock); nothing waits
on time."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from api.scheduler import JOBS, Scheduler
from loyalty.models import JobRun, JobRunStatus
from loyalty.rules import load_rules
from tests.api.loyalty_factories import cli_environment, loyalty_cli
from tests.cli.conftest import finished, lines_until, running_cli

ROOT = Path(__file__).resolve().parents[2]
RULES = load_rules()
# 01:00 UTC is 09:00 in Asia/Shanghai: the programme's day is the same date.
START = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
D = START.date()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """Fake jobs that record (job, day) and can be held inside a run."""

    def __init__(self, names=("first", "second", "third")) -> None:
        self.calls: list[tuple[str, date]] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail: set[tuple[str, date]] = set()
        self.jobs = {name: self._job(name) for name in names}

    def _job(self, name: str):
        async def job(settings, rules, day, checkpoint):
            self.calls.append((name, day))
            self.entered.set()
            if self.hold is not None:
                await self.hold.wait()
            checkpoint(1, 2)  # between its two batches
            if (name, day) in self.fail:
                raise RuntimeError(f"{name} broke")
            return f"{name} done", {"n": len(self.calls)}

        return job


def scheduler(db, clock: Clock, jobs, owner: str, **options) -> Scheduler:
    return Scheduler(replace(db, clock=clock), RULES, jobs=jobs, owner=owner, **options)


async def rows() -> list[tuple]:
    return await JobRun.all().order_by("day", "id").values_list("job", "day", "status", "owner", "attempts")


async def test_two_schedulers_run_each_job_once_a_day(db):
    clock, fake = Clock(START), Recorder()
    fake.hold = asyncio.Event()
    a, b = scheduler(db, clock, fake.jobs, "a"), scheduler(db, clock, fake.jobs, "b")
    running = asyncio.create_task(a.tick())
    async with asyncio.timeout(30):  # a scheduler that never gets there fails the test, not the session
        await fake.entered.wait()  # a holds "first" for D
    assert await b.tick() == []  # b sees the live lease and leaves the day to a
    fake.hold.set()
    async with asyncio.timeout(30):
        records = await running
    assert [(r.job, r.day, r.status, r.owner) for r in records] == [
        (name, D, JobRunStatus.DONE, "a") for name in ("first", "second", "third")
    ]
    assert await b.tick() == [] and await a.tick() == []  # the day is done for everybody
    assert fake.calls == [("first", D), ("second", D), ("third", D)]
    assert await rows() == [(name, D, JobRunStatus.DONE, "a", 1) for name in ("first", "second", "third")]


async def test_schedulers_ticking_at_once_over_missed_days_run_each_job_and_day_once(db):
    clock, fake = Clock(START), Recorder()
    schedulers = [scheduler(db, clock, fake.jobs, owner) for owner in ("a", "b", "c")]
    await schedulers[0].tick()
    clock.now += timedelta(days=3)
    for _ in range(4):  # each gathered round lets whoever holds a run finish it
        await asyncio.gather(*(s.tick() for s in schedulers))
    days = [D + timedelta(days=n) for n in range(4)]
    assert sorted(fake.calls, key=lambda c: (c[1], list(fake.jobs).index(c[0]))) == fake.calls  # in order
    assert sorted(fake.calls) == sorted((name, day) for day in days for name in fake.jobs)
    assert [(job, day, status) for job, day, status, _, _ in await rows()] == [
        (name, day, JobRunStatus.DONE) for day in days for name in fake.jobs
    ]


async def test_missed_days_are_caught_up_in_order_and_recorded(db):
    clock, fake = Clock(START), Recorder(("review", "expire"))
    seen = []
    one = scheduler(db, clock, fake.jobs, "one", on_run=seen.append)
    await one.tick()
    clock.now += timedelta(days=2)  # the scheduler was down for a day
    records = await one.tick()
    assert [(r.job, r.day) for r in records] == [
        ("review", D + timedelta(days=1)), ("expire", D + timedelta(days=1)),
        ("review", D + timedelta(days=2)), ("expire", D + timedelta(days=2)),
    ]
    assert seen[2:] == records  # the metrics hook got every finished run
    assert all(r.outcome.endswith(" done") and r.counts["n"] >= 1 and r.seconds == 0 for r in records)
    run = await JobRun.get(job="expire", day=D + timedelta(days=2))
    assert (run.started_at, run.finished_at, run.outcome, run.counts) == (clock.now, clock.now, "expire done", {"n": 6})


async def test_catch_up_goes_back_at_most_catch_up_days(db):
    clock, fake = Clock(START), Recorder(("only",))
    one = scheduler(db, clock, fake.jobs, "one", catch_up_days=3)
    await one.tick()
    clock.now += timedelta(days=10)
    assert [r.day for r in await one.tick()] == [D + timedelta(days=n) for n in (8, 9, 10)]


async def test_a_failed_run_stops_later_days_and_is_retried_after_a_while(db):
    clock, fake = Clock(START), Recorder(("review", "expire"))
    fake.fail.add(("expire", D))
    one = scheduler(db, clock, fake.jobs, "one", retry_after=timedelta(minutes=15))
    records = await one.tick()
    assert [(r.job, r.status) for r in records] == [("review", JobRunStatus.DONE), ("expire", JobRunStatus.FAILED)]
    assert records[-1].outcome == "RuntimeError: expire broke"
    clock.now += timedelta(minutes=14)
    assert await one.tick() == []  # D's expiry waits for its retry
    clock.now += timedelta(days=1)
    records = await one.tick()  # retried, failed again: D+1 does not run before it
    assert [(r.job, r.day, r.status) for r in records] == [("expire", D, JobRunStatus.FAILED)]
    fake.fail.clear()
    clock.now += timedelta(minutes=15, seconds=1)
    records = await one.tick()
    assert [(r.job, r.day) for r in records] == [("expire", D), ("review", D + timedelta(days=1)), ("expire", D + timedelta(days=1))]
    assert (await JobRun.get(job="expire", day=D)).attempts == 3


async def test_a_stopped_scheduler_ends_its_job_at_a_checkpoint_and_gives_the_lease_back(db):
    """Shutdown stops a job between batches (no cancel, which could land as a batch
    enters its transaction): the run stays RUNNING, its lease lapsed, and another
    scheduler takes it over at once."""
    clock, fake = Clock(START), Recorder()
    fake.hold, stop = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(scheduler(db, clock, fake.jobs, "a").run_forever(3600, stop=stop))
    async with asyncio.timeout(30):
        await fake.entered.wait()  # "first" for D is under way
        stop.set()
        fake.hold.set()  # its next checkpoint sees the stop
        await running
    assert await rows() == [("first", D, JobRunStatus.RUNNING, "a", 1)]
    assert (await JobRun.get(job="first", day=D)).outcome == "stopped after 1 of 2 (shutdown)"
    fake.hold = None
    records = await scheduler(db, clock, fake.jobs, "b").tick()
    assert [(r.job, r.status, r.owner) for r in records] == [
        ("first", JobRunStatus.DONE, "b"), ("second", JobRunStatus.DONE, "b"), ("third", JobRunStatus.DONE, "b")]


async def test_a_crashed_holders_run_is_taken_over_once_its_lease_lapses(db):
    clock, fake = Clock(START), Recorder(("review",))
    crashed = scheduler(db, clock, fake.jobs, "crashed", lease=timedelta(minutes=10))
    assert await crashed.acquire("review", D)  # ... and then the process died
    other = scheduler(db, clock, fake.jobs, "other", lease=timedelta(minutes=10))
    assert await other.tick() == []
    clock.now += timedelta(minutes=10, seconds=1)
    takers = [scheduler(db, clock, fake.jobs, f"t{n}") for n in range(2)]
    assert sorted([await takers[0].acquire("review", D), await takers[1].acquire("review", D)]) == [False, True]
    assert await rows() == [("review", D, JobRunStatus.RUNNING, "t0", 2)]


async def test_the_real_jobs_run_through_the_scheduler(db):
    clock = Clock(START)
    records = await Scheduler(replace(db, clock=clock), RULES, owner="real").tick()
    assert [(r.job, r.status) for r in records] == [(name, JobRunStatus.DONE) for name in JOBS]
    assert records[0].counts == {"examined": 0, "retained": 0, "downgraded": 0, "events": 0}
    assert records[2].counts["offices"] == 142


async def test_two_scheduler_processes_run_each_job_once(db, tmp_path):
    """`loyalty scheduler --once` in two processes at the same time, on the session's
    database (the real clock)."""
    command = [sys.executable, "-m", "api.cli", "scheduler", "--once"]
    env = cli_environment(db.database_url, PYTHONPATH=str(ROOT))
    processes = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    today = db.today()
    assert sorted((job, day, status) for job, day, status, _, _ in await rows()) == sorted(
        (name, today, JobRunStatus.DONE) for name in JOBS
    )
    lines = [line for out, _ in outputs for line in out.splitlines()]
    assert sorted(line.split(":")[0] for line in lines) == sorted(f"{name} {today}" for name in JOBS)
    # and the next run the same day has nothing to do
    again = loyalty_cli(["scheduler", "--once"], tmp_path, db.database_url)
    assert (again.returncode, again.stdout) == (0, "")


@pytest.mark.parametrize(("args", "expected"), [(["--every", "0"], "'0' is not a positive number"),
                                                  (["--catch-up-days", "0"], "--catch-up-days must be at least 1")])
def test_bad_scheduler_flags_are_one_line(tmp_path, args, expected):
    done = loyalty_cli(["scheduler", *args], tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert expected in done.stderr and len(done.stderr.splitlines()) == 1


async def test_latest_runs_give_a_metrics_collector_the_last_run_of_each_job(db):
    from api.scheduler import latest_runs

    clock, fake = Clock(START), Recorder(("review", "expire"))
    fake.fail.add(("expire", D + timedelta(days=1)))
    one = scheduler(db, clock, fake.jobs, "one")
    await one.tick()
    clock.now += timedelta(days=1)
    await one.tick()
    latest = await latest_runs(["review", "expire", "never"])
    assert [(r.job, r.day, r.status, r.outcome) for r in latest] == [
        ("review", D + timedelta(days=1), JobRunStatus.DONE, "review done"),
        ("expire", D + timedelta(days=1), JobRunStatus.FAILED, "RuntimeError: expire broke"),
    ]


async def test_the_scheduler_runs_inside_a_server_from_startup_to_shutdown(db):
    """with_scheduler (LOYALTY_SCHEDULER=1): the app's lifespan starts it after the app's
    own startup, and shutdown stops its job at the job's next checkpoint."""
    from api.scheduler import with_scheduler

    clock, fake = Clock(START), Recorder(("review",))
    fake.hold = asyncio.Event()
    started = []

    async def app(scope, receive, send):  # an app with a lifespan of its own
        assert (await receive())["type"] == "lifespan.startup"
        started.append(True)
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    server = with_scheduler(app, scheduler(db, clock, fake.jobs, "in-server"), every=3600)
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    async def receive():
        message = await inbox.get()
        if message["type"] == "lifespan.shutdown":
            # Let the held job go on once the shutdown has asked it to stop.
            asyncio.get_running_loop().call_soon(fake.hold.set)
        return message

    lifespan = asyncio.create_task(server({"type": "lifespan"}, receive, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    async with asyncio.timeout(30):  # a lifespan that never answers fails the test, not the session
        assert (await outbox.get())["type"] == "lifespan.startup.complete"
        await fake.entered.wait()  # the day's first job started after the app's startup
    assert started == [True] and fake.calls == [("review", D)]
    await inbox.put({"type": "lifespan.shutdown"})  # the job is still held: it stops at its checkpoint
    async with asyncio.timeout(30):
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await lifespan
    assert await rows() == [("review", D, JobRunStatus.RUNNING, "in-server", 1)]  # lease given back: taken over
    assert (await JobRun.get(job="review", day=D)).outcome == "stopped after 1 of 2 (shutdown)"


def test_loyalty_scheduler_setting_is_read(tmp_path):
    from api.settings import load_settings

    assert load_settings(environ={"LOYALTY_SCHEDULER": "1"}, dotenv=None).scheduler
    assert not load_settings(environ={}, dotenv=None).scheduler


HELD = Path(__file__).with_name("held_scheduler.py")


async def stop_a_held_scheduler(db, tmp_path, args: list[str], release: str | None):
    """`loyalty scheduler ARGS` with held jobs (tests/cli/held_scheduler.py): SIGTERM
    while "first" runs, "first" then released with ``release`` (None: a second SIGTERM
    instead); the exit code, stdout and stderr."""
    import signal

    async with running_cli([HELD, "scheduler", *args], tmp_path, db.database_url) as child:
        out = await lines_until(child.stdout, "first entered", seconds=30)
        child.send_signal(signal.SIGTERM)
        err = await lines_until(child.stderr, "stopping", seconds=30)  # the signal was handled
        if release is None:
            child.send_signal(signal.SIGTERM)
        else:
            child.stdin.write(f"{release}\n".encode())
            await child.stdin.drain()
        rest = await finished(child)
    return child.returncode, out + rest[0], err + rest[1]


STOPPING = "scheduler: stopping after the current batch (SIGTERM; again to stop at once)"


@pytest.mark.parametrize("once", [False, True], ids=["forever", "once"])
async def test_sigterm_lets_the_job_under_way_finish_its_batch_and_exits_0(db, tmp_path, once):
    """An orchestrator's stop: a job in its last batch completes and is recorded; the
    next job never starts; exit 0 with one line on stderr."""
    code, out, err = await stop_a_held_scheduler(db, tmp_path, ["--once"] if once else [], "last")
    assert code == 0, err
    assert [line for line in err.splitlines() if "stopping" in line] == [STOPPING]
    today = db.today()
    assert [(job, day, status) for job, day, status, _, _ in await rows()] == [("first", today, JobRunStatus.DONE)]
    assert out.splitlines()[0] == "first entered" and out.splitlines()[1].startswith(f"first {today}: DONE in ")
    assert len(out.splitlines()) == 2  # "second" never entered
    if once:
        assert err.splitlines()[-1] == f"scheduler: 1 run(s) up to {today}"


async def test_sigterm_ends_a_job_with_batches_to_go_at_its_checkpoint_for_another_scheduler(db, tmp_path):
    code, out, err = await stop_a_held_scheduler(db, tmp_path, [], "more")
    assert code == 0, err
    assert [line for line in err.splitlines() if "stopping" in line] == [STOPPING]
    assert out == "first entered\n"
    run = await JobRun.get(job="first", day=db.today())
    assert (run.status, run.outcome) == (JobRunStatus.RUNNING, "stopped after 1 of 2 (shutdown)")
    assert run.lease_until < datetime.now(timezone.utc)  # given back: the next scheduler takes it over at once


async def test_a_second_sigterm_stops_at_once(db, tmp_path):
    """The job is still held: the second signal does not wait for it. Its run stays
    RUNNING under its lease, taken over when the lease lapses (as after a crash)."""
    import signal

    code, out, err = await stop_a_held_scheduler(db, tmp_path, [], None)
    assert code == -signal.SIGTERM
    assert [line for line in err.splitlines() if "stopping" in line] == [STOPPING, "scheduler: stopping now (SIGTERM again)"]
    assert out == "first entered\n"
    run = await JobRun.get(job="first", day=db.today())
    assert run.status == JobRunStatus.RUNNING and run.lease_until > datetime.now(timezone.utc)
