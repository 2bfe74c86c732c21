"""members.group_commit by itself: what runs in a batch, what runs alone, and in which
context. Each write records one row (idempotency_record, a small table with a unique
index); commits are counted at the driver. The postings' own guarantees are in
tests/loyalty/test_group_commit.py."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from members import group_commit
from members.models import IdempotencyRecord
from tests.transactions import batched, commits_counted, failing_commits, group_commit_on  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("group_commit_on")
REQUEST = contextvars.ContextVar("request", default=None)


def record(key: str, seen: list | None = None):
    async def work(connection):
        if seen is not None:
            seen.append((key, REQUEST.get()))
        return (await IdempotencyRecord.create(caller="t", key=key, operation="w", fingerprint="-", result_id=0,
                                               using_db=connection)).id
    return work


async def as_request(name: str, work):
    REQUEST.set(name)
    return await group_commit.write(work)


async def keys() -> list[str]:
    return sorted(await IdempotencyRecord.all().values_list("key", flat=True))


async def test_ten_writes_at_once_commit_once_each_in_its_request_context(db, commits_counted):
    seen: list = []
    ids = await asyncio.gather(*(as_request(f"r{n}", record(f"k{n}", seen)) for n in range(10)))
    assert len(commits_counted) == 1
    assert seen == [(f"k{n}", f"r{n}") for n in range(10)]
    assert len(set(ids)) == 10 and await keys() == sorted(f"k{n}" for n in range(10))


async def test_with_group_commit_off_each_write_commits_alone(db, commits_counted):
    group_commit.configure("off")
    await asyncio.gather(*(group_commit.write(record(f"k{n}")) for n in range(5)))
    assert len(commits_counted) == 5


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="auto, on, off"):
        group_commit.configure("sometimes")


async def test_an_error_of_the_service_is_answered_and_the_others_commit(db, commits_counted):
    results = await asyncio.gather(
        group_commit.write(record("a")), group_commit.write(record("a")), group_commit.write(record("b")),
        return_exceptions=True,
    )
    assert len(commits_counted) == 1
    assert isinstance(results[1], IntegrityError)  # the service's to handle (a replay): answered from the batch
    assert await keys() == ["a", "b"]


async def test_any_other_error_sends_the_posting_to_run_alone(db, commits_counted):
    calls: list[str] = []

    async def flaky(connection):
        calls.append("run")
        if len(calls) == 1:
            raise ConnectionError("lost in the batch")  # as a deadlock or a lost connection would
        return await record("flaky")(connection)

    results = await asyncio.gather(group_commit.write(record("a")), group_commit.write(flaky),
                                   group_commit.write(record("b")))
    assert calls == ["run", "run"] and len(commits_counted) == 2  # the batch (a, b), then flaky alone
    assert len(set(results)) == 3 and await keys() == ["a", "b", "flaky"]


async def test_a_write_inside_a_transaction_runs_in_it(db, commits_counted):
    async with in_transaction():
        # Through the writer it would wait for this transaction's connection forever.
        await asyncio.wait_for(group_commit.write(record("inner")), timeout=60)
        assert not commits_counted
    assert len(commits_counted) == 1 and await keys() == ["inner"]


async def test_a_request_gone_before_its_batch_writes_nothing(db, commits_counted, monkeypatch):
    gone = asyncio.ensure_future(group_commit.write(record("gone")))
    stays = asyncio.ensure_future(group_commit.write(record("stays")))
    await asyncio.sleep(0)  # both queued behind the writer, which has not run yet
    gone.cancel()
    assert await stays and gone.cancelled()
    assert len(commits_counted) == 1 and await keys() == ["stays"]


async def test_a_failed_commit_runs_every_posting_again_alone(db, commits_counted, failing_commits, monkeypatch):
    failing_commits.append(1)
    ids = await batched(*(group_commit.write(record(f"k{n}")) for n in range(4)), monkeypatch=monkeypatch)
    assert len(commits_counted) == 1 + 4
    assert await keys() == ["k0", "k1", "k2", "k3"]
    assert sorted(ids) == sorted(await IdempotencyRecord.all().values_list("id", flat=True))  # the committed rows
