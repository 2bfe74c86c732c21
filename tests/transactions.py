"""Fixtures and helpers for group commit tests (members.group_commit): commits counted
at the driver, commits made to fail, group commit switched on, and postings held until
all are queued so that they make one batch whatever reads they do before posting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest
from tortoise.backends.asyncpg.client import TransactionWrapper as PostgresTransaction
from tortoise.backends.sqlite.client import SqliteTransactionWrapper
from tortoise.exceptions import OperationalError

from members import group_commit


@pytest.fixture
def group_commit_on():
    saved = group_commit._mode
    group_commit.configure("on")
    yield
    group_commit.configure(saved)


@pytest.fixture
def failing_commits() -> list[int]:
    """Append to the list: the next COMMITs (one per item) fail before committing."""
    return []


@pytest.fixture
def commits_counted(monkeypatch, failing_commits) -> list[str]:
    """Every transaction's COMMIT (attempted) from here on, by dialect; a savepoint's
    release is not one."""
    counted: list[str] = []
    for cls, dialect in ((SqliteTransactionWrapper, "sqlite"), (PostgresTransaction, "postgres")):
        real = cls.commit

        async def commit(self, real=real, dialect=dialect):
            if isinstance(getattr(self, "_parent", None), PostgresTransaction):  # asyncpg: a savepoint's release
                return await real(self)
            counted.append(dialect)
            if failing_commits:
                failing_commits.pop()
                raise OperationalError("disk I/O error (a test's)")
            await real(self)

        monkeypatch.setattr(cls, "commit", commit)
    return counted


async def batched(*requests: Awaitable, monkeypatch: pytest.MonkeyPatch) -> list:
    """Run the requests at once, the writer held until each has queued its posting (or
    ended without one), so that they make one batch, in the order they queued; their
    results or exceptions, as gather(return_exceptions=True)."""
    gate = asyncio.Event()
    drain = group_commit._Writer._drain

    async def held(self):
        await gate.wait()
        await drain(self)

    monkeypatch.setattr(group_commit._Writer, "_drain", held)
    tasks = [asyncio.ensure_future(request) for request in requests]
    try:
        # Bounded: a request that neither queues nor ends fails the test instead of spinning forever.
        async with asyncio.timeout(30):
            while len(group_commit._writer().queue) + sum(t.done() for t in tasks) < len(tasks):
                await asyncio.sleep(0)  # a turn of the loop: the requests' reads before posting run
    finally:
        # Let the writer go whatever happened: held, it would hold every later write of the session.
        monkeypatch.setattr(group_commit._Writer, "_drain", drain)
        gate.set()
    async with asyncio.timeout(30):
        return await asyncio.gather(*tasks, return_exceptions=True)
