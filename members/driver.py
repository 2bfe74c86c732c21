"""Statements sent straight to the database driver, past Tortoise's client (issue 12),
all through one call (`send`):

- ``run_sqlite``: several SQLite statements in one hand-off to the driver's thread.
  aiosqlite runs every statement on its own thread: each one is a trip there and back
  (a queue put, a thread switch under the GIL, a future settled through the event
  loop), and Tortoise adds its connection lock, exception translation and a dict per
  row. A posting whose statements follow each other without anything to wait for
  between them (its later statements computed from the rows of the earlier ones, in
  plain Python) runs them all in ONE call on that thread instead (the accrual's three
  statements). A group commit's posting (members.group_commit) whose first statement
  is such a call has its savepoint opened by it (``open_first``), in the same hand-off.
- ``DIRECT.fetch`` (DirectRead): the member read's one SELECT, on SQLite on a reader
  connection of its own on the event loop's thread (``_reader``), else without the
  client's lock while no transaction holds it; on PostgreSQL on a connection of the
  pool (its per-call lock, connection wrapper and exception translation cost more
  than the driver).

Every statement goes to Tortoise's statement log (``log_statement``: the statement
counts of the tests read it), errors come back as Tortoise's (IntegrityError,
OperationalError), and `send` is the one call api.metrics times (instrument_database),
as it times Tortoise's clients.
"""

from __future__ import annotations

import logging
import sqlite3
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.sqlite.client import SqliteClient
from tortoise.exceptions import IntegrityError, OperationalError

__all__ = ["DIRECT", "DirectRead", "log_statement", "open_first", "run_sqlite", "send"]

T = TypeVar("T")
Log = Callable[[str, Any], None]

# Tortoise's statement log (tortoise.log.db_client_logger): every statement it sends is
# written here at DEBUG, and every statement sent here too.
_STATEMENTS = logging.getLogger("tortoise.db_client")
_DEBUG = logging.DEBUG


def log_statement(sql: str, parameters: Any) -> None:
    """Log a statement as Tortoise's clients log theirs. Safe on the driver's thread."""
    if _STATEMENTS.isEnabledFor(_DEBUG):
        _STATEMENTS.debug("%s: %s", sql, parameters)


def _asyncpg_client() -> type | None:
    try:
        from tortoise.backends.asyncpg.client import AsyncpgDBClient
    except ImportError:  # asyncpg is a dependency, but be tolerant
        return None
    return AsyncpgDBClient


_ASYNCPG_CLIENT = _asyncpg_client()


async def send(connection: BaseDBAsyncClient, work: Callable[[Any], Any], *, read_only: bool = False) -> Any:
    """``work`` straight on the driver of a Tortoise client. SQLite (the client or one of
    its transactions): ``work(sqlite3 connection)`` on aiosqlite's thread in one hand-off
    (aiosqlite's private _execute and _conn: its own execute() runs its work so), under
    the client's connection lock; or, ``read_only`` work on the client itself (not a
    transaction), without the lock while no transaction holds it (DirectRead says why
    that reads committed rows only). PostgreSQL (the pool client): ``await work(asyncpg
    connection)`` on a connection of the pool, as Tortoise takes one. Errors come back
    as Tortoise's. api.metrics times this call: every call sent straight to a driver."""
    if type(connection) is _ASYNCPG_CLIENT:
        return await connection._translate_exceptions(_on_pool, work)
    if read_only:
        reader = _reader(connection)
        if reader is not None:
            try:
                return work(reader)
            except sqlite3.Error:  # busy (rare in WAL), or an error the driver's path words
                pass
    try:
        if read_only and not connection._lock.locked():
            driver = connection._connection
            return await driver._execute(work, driver._conn)
        async with connection.acquire_connection() as driver:
            return await driver._execute(work, driver._conn)
    except sqlite3.IntegrityError as error:  # as Tortoise's client translates them
        raise IntegrityError(error) from error
    except sqlite3.OperationalError as error:
        raise OperationalError(error) from error


# aiosqlite connection -> its reader (None: this database cannot have one).
_READERS: weakref.WeakKeyDictionary[Any, sqlite3.Connection | None] = weakref.WeakKeyDictionary()
_READER_BUSY_MS = 50  # it runs on the event loop's thread: never wait long, fall back


def _reader(client: BaseDBAsyncClient) -> sqlite3.Connection | None:
    """A read-only sqlite3 connection to the client's file, used on the event loop's
    thread: a primary-key SELECT costs tens of microseconds there, less than the trip to
    aiosqlite's thread and back (a queue put, a thread switch under the GIL, a future
    settled through the loop: a third of a member read's CPU, bench/RESULTS.md). In WAL
    mode each SELECT is its own read transaction over the last COMMIT, so it sees
    committed rows only (never a transaction's or a group commit batch's rows before
    their COMMIT), and it runs beside the writer instead of waiting for its transaction.
    Not for an in-memory database (a second connection would open another one) nor a
    file not in WAL mode (a reader would wait on the writer). It lives as long as the
    client's aiosqlite connection; SQLite keeps the file's locks right when two
    connections of one process share a file and one closes."""
    driver = getattr(client, "_connection", None)
    if type(client) is not SqliteClient or driver is None:
        return None
    try:
        return _READERS[driver]
    except KeyError:
        reader = _READERS[driver] = _open_reader(client)
        return reader


def _open_reader(client: SqliteClient) -> sqlite3.Connection | None:
    name = client.filename
    if not name or name == ":memory:" or "mode=memory" in name:
        return None
    try:
        reader = sqlite3.connect(name, isolation_level=None, check_same_thread=False, uri=name.startswith("file:"))
    except sqlite3.Error:
        return None
    try:
        if str(reader.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            reader.close()
            return None
        for pragma in ("cache_size", "mmap_size"):  # the deployment's read settings (DATABASE_URL)
            if pragma in client.pragmas:
                reader.execute(f"PRAGMA {pragma}={int(client.pragmas[pragma])}")
        reader.execute(f"PRAGMA busy_timeout={_READER_BUSY_MS}")
        reader.execute("PRAGMA query_only=1")
    except (sqlite3.Error, ValueError):
        reader.close()
        return None
    return reader


async def _on_pool(client: Any, work: Callable[[Any], Any]) -> Any:
    async with client._pool.acquire() as driver:
        return await work(driver)


# ---- several SQLite statements in one hand-off -----------------------------------

# (savepoint client, name): the savepoint the next run_sqlite on that client opens first.
_first: ContextVar[tuple[BaseDBAsyncClient, str] | None] = ContextVar("driver_first", default=None)


def open_first(savepoint: BaseDBAsyncClient, name: str) -> None:
    """The next run_sqlite on `savepoint` (a Tortoise SQLite savepoint client, not yet
    opened) in this context opens it as `name` before its own statements; from then on
    it is the client's savepoint (savepoint_rollback rolls back to it)."""
    _first.set((savepoint, name))


async def run_sqlite(connection: BaseDBAsyncClient, statements: Callable[[sqlite3.Connection, Log], T]) -> T:
    """``statements(sqlite3 connection, log)`` on the driver's thread of this Tortoise
    SQLite connection (or transaction), under its connection lock, in one hand-off:
    ordinary sqlite3 calls, each statement first logged by ``log(sql, parameters)``.
    They must not touch the event loop: they run on the driver's thread."""
    opening = None
    first = _first.get()
    if first is not None and first[0] is connection:
        _first.set(None)
        opening = f"SAVEPOINT {first[1]}"
        connection._savepoint = first[1]  # Tortoise's record of the open savepoint

    def run(sqlite: sqlite3.Connection) -> T:
        if opening is not None:
            sqlite.execute(opening)
        return statements(sqlite, log_statement)

    return await send(connection, run)


# ---- one read ----------------------------------------------------------------------


class DirectRead:
    """A read-only statement sent straight to the driver's connection, without Tortoise's
    client around it (the member read, members.queries).

    SQLite on a WAL file: on the client's reader (``_reader``), on the event loop's
    thread, beside any open transaction. Otherwise (no reader, or it was busy): Tortoise runs the one connection's transactions under the client's lock,
    from before BEGIN to after COMMIT, and aiosqlite runs the calls it is given one at a
    time, in order, on its thread. A statement handed to aiosqlite while the lock is
    free is therefore run before any BEGIN that comes later, outside every transaction:
    it reads committed rows only, as Tortoise's own call would, without taking the lock
    (uncontended, and so with no queue of waiters to walk: 10 % of a read under 16
    concurrent requests). While a transaction holds the lock the read waits for it, as
    Tortoise's does. PostgreSQL: a connection of the pool, as Tortoise takes one.
    Anything else (a transaction's client, no connection opened yet) goes through
    Tortoise's client."""

    async def fetch(self, connection: BaseDBAsyncClient, sql: str, values: list) -> list[tuple]:
        log_statement(sql, values)
        kind = type(connection)
        if kind is SqliteClient and connection._connection is not None:
            return await send(connection, partial(_sqlite_fetch, sql, values), read_only=True)
        if kind is _ASYNCPG_CLIENT and connection._pool is not None:
            return await send(connection, partial(_pool_fetch, sql, values))
        _, rows = await connection.execute_query(sql, values)
        return rows


def _sqlite_fetch(sql: str, values: list, sqlite: sqlite3.Connection) -> list:
    return sqlite.execute(sql, values).fetchall()  # as aiosqlite's execute_fetchall


def _pool_fetch(sql: str, values: list, driver: Any) -> Any:
    return driver.fetch(sql, *values)


DIRECT = DirectRead()
