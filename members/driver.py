"""Several SQLite statements in one hand-off to the driver's thread.

aiosqlite runs every statement on its own thread: each one is a trip there and back
(a queue put, a thread switch under the GIL, a future settled through the event loop),
and Tortoise adds its connection lock, exception translation and a dict per row. A
posting whose statements follow each other without anything to wait for between them
(its later statements computed from the rows of the earlier ones, in plain Python)
runs them all in ONE call on that thread instead (issue 12: the accrual's three
statements).

``statements(sqlite3_connection, log)`` is the work: ordinary sqlite3 calls, each
statement first logged by ``log(sql, parameters)`` as Tortoise logs its own (the
statement counts of the tests read that log). Its errors come back as Tortoise's
(IntegrityError, OperationalError), as from Tortoise's own calls. The work must not
touch the event loop: it runs on the driver's thread.

A group commit's posting (members.group_commit) whose first statement is such a call
has its savepoint opened by it (``open_first``), in the same hand-off.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError

__all__ = ["open_first", "run_sqlite"]

T = TypeVar("T")
Log = Callable[[str, Any], None]

# (savepoint client, name): the savepoint the next run_sqlite on that client opens first.
_first: ContextVar[tuple[BaseDBAsyncClient, str] | None] = ContextVar("driver_first", default=None)


def open_first(savepoint: BaseDBAsyncClient, name: str) -> None:
    """The next run_sqlite on `savepoint` (a Tortoise SQLite savepoint client, not yet
    opened) in this context opens it as `name` before its own statements; from then on
    it is the client's savepoint (savepoint_rollback rolls back to it)."""
    _first.set((savepoint, name))


async def run_sqlite(connection: BaseDBAsyncClient, statements: Callable[[sqlite3.Connection, Log], T]) -> T:
    """``statements(sqlite3 connection, log)`` on the driver's thread of this Tortoise
    SQLite connection (or transaction), under its connection lock, in one hand-off."""
    debug = connection.log.debug

    def log(sql: str, parameters: Any) -> None:
        debug("%s: %s", sql, parameters)

    opening = None
    first = _first.get()
    if first is not None and first[0] is connection:
        _first.set(None)
        opening = f"SAVEPOINT {first[1]}"
        connection._savepoint = first[1]  # Tortoise's record of the open savepoint

    def run(sqlite: sqlite3.Connection) -> T:
        if opening is not None:
            sqlite.execute(opening)
        return statements(sqlite, log)

    async with connection.acquire_connection() as driver:
        try:
            # aiosqlite's own way of running work on its thread (its execute() uses it).
            return await driver._execute(lambda: run(driver._conn))
        except sqlite3.IntegrityError as error:
            raise IntegrityError(error) from error
        except sqlite3.OperationalError as error:
            raise OperationalError(error) from error
