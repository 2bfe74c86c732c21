"""An erasure racing a write of free text about the member (feedbackSubmit, feedbackUpdate,
careCallLog) keeps none of that text, whichever comes first (privacy.erasure,
members.privacy.hold_member).

On PostgreSQL the two are interleaved deterministically, with no sleep: one side is
stopped at a gate inside its transaction (after its hold on the member row), the other
is started and the test waits until the database reports it waiting for a lock (it
never would without the hold, and the test would fail on its timeout), then the gate
opens. On SQLite the hold is the transaction's first write, which takes the database's
write lock (checked from a second connection); the outcomes after an erasure are
checked on both."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date, datetime, timezone

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

import care.calls as calls_module
import care.feedback as feedback_module
import privacy.erasure as erasure_module
from care.calls import log_care_call
from care.feedback import submit_feedback, update_feedback
from care.models import CallOutcome, CareCall, Feedback, FeedbackChange, FeedbackChannel, FeedbackKind, FeedbackStatus
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.errors import DomainError
from members.models import Member
from members.privacy import ERASED_TEXT, hold_member
from members.services import Enrolment, enroll
from privacy.erasure import erase_member
from tests.statements import is_postgres

RULES = load_rules()
ADMIN = Caller(Role.ADMIN, "t")
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


async def wang() -> Member:
    return await enroll(ADMIN, Enrolment("Wang", "Fang", Address("CN", "Beijing", line="1 Road")), today=date(2026, 1, 5))


async def submit(member: Member):
    return await submit_feedback(ADMIN, member_id=str(member.id), kind=FeedbackKind.COMPLAINT,
                                 channel=FeedbackChannel.PHONE, subject="Bag of Wang", text="Wang's bag was late",
                                 rules=RULES, now=NOW)


async def resolve(item: Feedback):
    return await update_feedback(ADMIN, str(item.id), FeedbackStatus.RESOLVED, resolution="Paid Wang 200",
                                 note="Spoke to Wang", now=NOW)


async def call(member: Member):
    return await log_care_call(ADMIN, str(member.id), CallOutcome.REACHED, notes="Wang wants a window seat",
                               needs=["Window seat"], satisfaction=5, rules=RULES,
                               now=datetime.now(timezone.utc))  # not before the enrolment (now)


async def erase(member: Member):
    return await erase_member(ADMIN, member.id, "request PRV-3", now=NOW)


class Gate:
    """Stops a coroutine where `wrap` puts it until `open()`; `reached` says it got there."""

    def __init__(self) -> None:
        self.reached, self._open = asyncio.Event(), asyncio.Event()

    def wrap(self, function, *, after: bool):
        async def stopped(*args, **kwargs):
            if not after:
                self.reached.set()
                await self._open.wait()
            result = await function(*args, **kwargs)
            if after:
                self.reached.set()
                await self._open.wait()
            return result
        return stopped

    def open(self) -> None:
        self._open.set()

    async def reached_by(self, task: asyncio.Task) -> None:
        """Until `task` is stopped here; its exception if it ends before (no hang)."""
        waiting = asyncio.ensure_future(self.reached.wait())
        await asyncio.wait({waiting, task}, return_when=asyncio.FIRST_COMPLETED)
        if not self.reached.is_set():
            waiting.cancel()
            await task
            raise AssertionError("the task ended before the gate")


async def a_session_waits_for_a_lock() -> None:
    """Returns once a session of this database waits for a lock: each look is a query,
    so the other tasks run meanwhile; no sleep."""
    connection = connections.get("default")

    async def look() -> None:
        while not (await connection.execute_query_dict(
                "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"))[0]["n"]:
            pass

    await asyncio.wait_for(look(), 30)  # a bound for a broken hold, not a timing


@pytest.fixture
async def postgres(db):
    if not is_postgres():
        pytest.skip("interleaving transactions needs PostgreSQL's row locks (SQLite runs one writer at a time)")
    return db


async def erasure_stopped_then(monkeypatch, member: Member, write):
    """Erasure first: stopped after its UPDATE of the member row; `write` started, seen
    waiting; then both finish. The write's outcome (result or exception)."""
    gate = Gate()
    monkeypatch.setattr(erasure_module, "_erase_copies", gate.wrap(erasure_module._erase_copies, after=False))
    erasing = asyncio.create_task(erase(member))
    await gate.reached_by(erasing)
    writing = asyncio.create_task(write())
    try:
        await a_session_waits_for_a_lock()
    finally:  # a failure too lets both end (a transaction left open would hold the next test)
        gate.open()
        await erasing
        outcome = (await asyncio.gather(writing, return_exceptions=True))[0]
    return outcome


async def write_stopped_then_erasure(write, gate: Gate, member: Member):
    """The write first: stopped by `gate` inside its transaction after its hold; the
    erasure started, seen waiting; then both finish. The write's result."""
    writing = asyncio.create_task(write())
    await gate.reached_by(writing)
    erasing = asyncio.create_task(erase(member))
    try:
        await a_session_waits_for_a_lock()
    finally:  # a failure too lets both end (a transaction left open would hold the next test)
        gate.open()
        result = await writing
        await erasing
    return result


async def test_feedback_submitted_before_the_erasure_commits_is_scrubbed(postgres, monkeypatch):
    member = await wang()
    gate = Gate()
    monkeypatch.setattr(feedback_module, "visible_member", gate.wrap(feedback_module.visible_member, after=True))
    item = await write_stopped_then_erasure(lambda: submit(member), gate, member)
    row = await Feedback.get(id=item.id)
    assert (row.subject, row.text) == (ERASED_TEXT, ERASED_TEXT)
    assert (await Member.get(id=member.id)).erased_at is not None


async def test_feedback_submitted_during_an_erasure_is_refused(postgres, monkeypatch):
    member = await wang()
    outcome = await erasure_stopped_then(monkeypatch, member, lambda: submit(member))
    assert isinstance(outcome, DomainError) and outcome.code == "MEMBER_NOT_ACTIVE", outcome
    assert await Feedback.filter(member_id=member.id).count() == 0


async def test_a_resolution_written_before_the_erasure_commits_is_scrubbed(postgres, monkeypatch):
    member = await wang()
    item = await submit(member)
    gate = Gate()
    monkeypatch.setattr(feedback_module, "hold_member", gate.wrap(feedback_module.hold_member, after=True))
    await write_stopped_then_erasure(lambda: resolve(item), gate, member)
    row = await Feedback.get(id=item.id)
    assert (row.status, row.resolution) == (FeedbackStatus.RESOLVED, ERASED_TEXT)
    assert await FeedbackChange.filter(feedback_id=item.id).order_by("id").values_list("note", flat=True) == [None, None]


async def test_a_resolution_written_during_an_erasure_keeps_no_text(postgres, monkeypatch):
    member = await wang()
    item = await submit(member)
    outcome = await erasure_stopped_then(monkeypatch, member, lambda: resolve(item))
    assert not isinstance(outcome, BaseException), outcome
    row = await Feedback.get(id=item.id)
    assert (row.status, row.resolution, row.text) == (FeedbackStatus.RESOLVED, ERASED_TEXT, ERASED_TEXT)
    assert await FeedbackChange.filter(feedback_id=item.id).order_by("id").values_list("note", flat=True) == [None, None]


async def test_a_care_call_logged_before_the_erasure_commits_is_scrubbed(postgres, monkeypatch):
    member = await wang()
    gate = Gate()  # stopped after the call is written (its satisfaction counted), inside the transaction
    monkeypatch.setattr(calls_module, "add_score", gate.wrap(calls_module.add_score, after=True))
    logged = await write_stopped_then_erasure(lambda: call(member), gate, member)
    row = await CareCall.get(id=logged.id)
    assert (row.notes, row.needs) == (None, [])


async def test_a_care_call_logged_during_an_erasure_is_refused(postgres, monkeypatch):
    member = await wang()
    outcome = await erasure_stopped_then(monkeypatch, member, lambda: call(member))
    assert isinstance(outcome, DomainError) and outcome.code == "MEMBER_NOT_ACTIVE", outcome
    assert await CareCall.filter(member_id=member.id).count() == 0


async def test_after_an_erasure_feedback_moves_without_text_and_new_text_is_refused(db):
    member = await wang()
    item = await submit(member)
    await erase(member)
    resolved = await resolve(item)
    assert (resolved.status, resolved.resolution) == (FeedbackStatus.RESOLVED, ERASED_TEXT)
    assert await FeedbackChange.filter(feedback_id=item.id).order_by("id").values_list("note", flat=True) == [None, None]
    for write in (submit, call):
        with pytest.raises(DomainError) as error:
            await write(member)
        assert error.value.code == "MEMBER_NOT_ACTIVE"


async def test_the_hold_on_sqlite_is_the_database_write_lock(db):
    if is_postgres():
        pytest.skip("PostgreSQL's hold is a row lock: the interleaving tests above")
    member = await wang()
    path = db.database_url.removeprefix("sqlite://")
    async with in_transaction() as connection:
        assert await hold_member(connection, member.id) is False
        other = sqlite3.connect(path, timeout=0)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # another process's erasure would wait for this transaction
        finally:
            other.close()
    async with in_transaction() as connection:
        assert await hold_member(connection, 10**9) is None
    await erase(member)
    async with in_transaction() as connection:
        assert await hold_member(connection, member.id) is True
