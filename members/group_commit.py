"""Group commit: the writes of concurrent requests committed in one transaction.

On SQLite every commit syncs the write-ahead log to disk (4.4 ms on the bench machine,
synchronous=FULL) and Tortoise runs one transaction at a time on its one connection, so
one transaction per request caps a process at one posting per sync. With group commit
a service hands its posting, ``work(connection)``, to ``write()``; the process's writer
task takes every posting queued meanwhile (at most MAX_BATCH, never waiting for more),
runs them in ONE transaction, each in its own savepoint, commits once, and only then
answers each request with its result or its error.

What keeps every guarantee of one transaction per request:

- Each posting runs the same statements in the same order as alone, inside the batch's
  transaction, after the postings before it: a conditional update (a redemption's
  "balance covers it") sees their effects, a unique index (externalRef, idempotencyKey)
  meets a twin's row written earlier in the batch, a tier event is written beside its
  cause. Postings of one batch are as if committed one after another.
- A posting that fails rolls back to its savepoint: only its own writes go. Its error is
  answered (after the commit) when it is one the service handles itself (ANSWERED: a
  refusal, a lost race on a unique index, which the service then replays from the
  committed winner); any other error (the database's: a deadlock, a lost connection)
  sends the posting back to run alone in its own transaction.
- Results are answered only after the COMMIT returned, so no client ever sees a write
  that is not committed. If the batch's transaction fails (BEGIN, a savepoint, the
  COMMIT), nothing of it is committed (it is rolled back) and every posting of it runs
  again alone, in its own transaction, as without group commit; their externalRef or
  idempotencyKey make that safe even when a lost connection left the COMMIT's outcome
  unknown (PostgreSQL).
- A posting whose request went away before its batch started is not run; one already
  in a batch commits with it (its retry replays it).
- A write() made inside a transaction runs in that transaction (a savepoint), never
  through the writer, which would wait for the transaction's lock.

Each posting runs in its request's context (contextvars: the request log's record,
tracing), with the batch's transaction as the default connection.

``configure(mode)``: "auto" (the default: on for SQLite, off for PostgreSQL, where
concurrent transactions run on a pool and commits do not queue behind one lock), "on",
"off". Set from LOYALTY_GROUP_COMMIT by the API layer.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from members import driver
from members.errors import DomainError, ForbiddenError

__all__ = ["MAX_BATCH", "MODES", "alone", "configure", "grouped", "write"]

T = TypeVar("T")
Work = Callable[[BaseDBAsyncClient], Awaitable[T]]

MODES = ("auto", "on", "off")
MAX_BATCH = 64  # postings per transaction: a batch holds the connection this long
# Errors a posting's service handles itself: answered from the batch.
ANSWERED = (DomainError, ForbiddenError, IntegrityError)
CONNECTION = "default"

_mode = "auto"


def configure(mode: str) -> None:
    """Group commit "auto" (SQLite only), "on" or "off" for this process."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"group commit mode must be one of {', '.join(MODES)}, not {mode!r}")
    _mode = mode


def grouped(connection: BaseDBAsyncClient) -> bool:
    """Whether write() groups postings on `connection` (the default one, not in a transaction)."""
    return _mode == "on" or (_mode == "auto" and connection.capabilities.dialect == "sqlite")


async def alone(work: Work[T]) -> T:
    """``work(connection)`` in its own transaction (a savepoint inside the caller's)."""
    if isinstance(connections.get(CONNECTION), TransactionalDBClient):
        async with in_transaction(CONNECTION) as savepoint:
            return await work(savepoint)
    return await _committed(work)


async def _committed(work: Callable[[BaseDBAsyncClient], Awaitable[T]]) -> T:
    """``work(connection)`` in a new transaction, committed inside its block: a failed
    COMMIT then rolls the transaction back on the way out, where Tortoise's own commit
    at the block's end would leave it open on SQLite for the next BEGIN to commit."""
    async with in_transaction(CONNECTION) as connection:
        result = await work(connection)
        await connection.commit()
    return result


async def write(work: Work[T], *, driver_first: bool = False) -> T:
    """``work(connection)`` in a transaction, its result once committed: with group commit
    in a savepoint of a batch's transaction, else (or inside a transaction) alone.
    ``driver_first``: the work's first statement on SQLite is a members.driver call, which
    then opens the posting's savepoint in the same hand-off to the driver's thread."""
    connection = connections.get(CONNECTION)
    if isinstance(connection, TransactionalDBClient) or not grouped(connection):
        return await alone(work)
    try:
        return await _writer().submit(work, driver_first)
    except _RunAlone:
        return await alone(work)


class _RunAlone(Exception):
    """The posting's batch did not commit it: run it in its own transaction."""


@dataclass(eq=False)
class _Posting:
    work: Work[Any]
    context: contextvars.Context  # the request's
    driver_first: bool = False  # write(driver_first=)
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.future.done():  # the request went away
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(result)

    async def run(
        self, connection: BaseDBAsyncClient, transaction: BaseDBAsyncClient, savepoint: str | None = None
    ) -> Any:
        """The work on `connection`, in the request's context with `transaction` (the
        batch's) as its default connection; `savepoint`: opened by the work's first
        members.driver call on `connection`."""
        context = self.context.copy()
        context.run(connections.set, CONNECTION, transaction)
        if savepoint is not None:
            context.run(driver.open_first, connection, savepoint)
        return await asyncio.get_running_loop().create_task(self.work(connection), context=context)


class _Writer:
    """The writer of one event loop: one batch at a time, while postings wait."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: deque[_Posting] = deque()
        self.task: asyncio.Task | None = None

    async def submit(self, work: Work[T], driver_first: bool = False) -> T:
        posting = _Posting(work, contextvars.copy_context(), driver_first)
        self.queue.append(posting)
        if self.task is None:
            self.task = self.loop.create_task(self._drain())
        return await posting.future

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch: list[_Posting] = []
                while self.queue and len(batch) < MAX_BATCH:
                    posting = self.queue.popleft()
                    if not posting.future.done():  # a cancelled request's posting never runs
                        batch.append(posting)
                if len(batch) == 1:
                    await self._one(batch[0])
                elif batch:
                    await self._batch(batch)
        finally:
            self.task = None
            while self.queue:  # the writer cancelled (shutdown): the rest run alone
                self.queue.popleft().settle(error=_RunAlone())

    async def _one(self, posting: _Posting) -> None:
        """A batch of one: its own transaction, no savepoint, every error its own."""
        try:
            result = await _committed(lambda connection: posting.run(connection, connection))
        except Exception as error:
            posting.settle(error=error)
        except BaseException:
            posting.settle(error=_RunAlone())
            raise
        else:
            posting.settle(result)

    async def _batch(self, batch: list[_Posting]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []

        async def postings(connection: BaseDBAsyncClient) -> None:
            for posting in batch:
                try:
                    outcomes.append((await _in_savepoint(connection, posting), None))
                except ANSWERED as error:
                    outcomes.append((None, error))
                except Exception:
                    outcomes.append((None, _RunAlone()))

        try:
            await _committed(postings)
        except BaseException as error:
            for posting in batch:
                posting.settle(error=_RunAlone())
            if not isinstance(error, Exception):
                raise
            return
        for posting, (result, error) in zip(batch, outcomes):
            posting.settle(result, error)


async def _in_savepoint(connection: BaseDBAsyncClient, posting: _Posting) -> Any:
    """The posting in a savepoint of the batch's transaction, rolled back to on an error.
    On SQLite a savepoint is not released when the posting succeeds: a RELEASE would be
    one more round trip to the driver's thread per posting, and the COMMIT ends them all
    (a later ROLLBACK TO an inner one undoes only what came after it). A posting whose
    first statement is a members.driver call (write(driver_first=True)) has its SAVEPOINT
    run by that call, in the same hand-off: one trip to the driver's thread less."""
    if connection.capabilities.dialect != "sqlite":
        async with in_transaction(CONNECTION) as savepoint:
            return await posting.run(savepoint, connection)
    savepoint = connection._in_transaction().client
    name = None
    if posting.driver_first:
        name = f"group_commit_{next(_savepoint_names)}"
    else:
        await savepoint.savepoint()
    try:
        return await posting.run(savepoint, connection, name)
    except BaseException:
        if savepoint._savepoint is not None:  # opened (by the driver call, when deferred)
            await savepoint.savepoint_rollback()
        raise


_savepoint_names = itertools.count()


_writer_of_loop: _Writer | None = None


def _writer() -> _Writer:
    global _writer_of_loop
    loop = asyncio.get_running_loop()
    if _writer_of_loop is None or _writer_of_loop.loop is not loop:
        _writer_of_loop = _Writer(loop)
    return _writer_of_loop
