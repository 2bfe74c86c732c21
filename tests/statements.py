"""Statements a piece of code runs, and the plans the database makes for them.

`captured()` records every statement sent through Tortoise (the "tortoise.db_client"
logger writes each one with its parameters at DEBUG). `plan()` asks the session's
database how it would run one: SQLite's EXPLAIN QUERY PLAN lines, or PostgreSQL's
EXPLAIN lines with sequential scans and sorts priced out (enable_seqscan/enable_sort
off), so that a tiny test table still shows whether an index CAN serve the query:
a Sort or Seq Scan left in the plan means none can.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tortoise import connections
from tortoise.transactions import in_transaction


@dataclass
class Statement:
    sql: str
    values: list

    @property
    def is_select(self) -> bool:
        return self.sql.lstrip().upper().startswith("SELECT")


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[Statement] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "%s: %s" and isinstance(record.args, tuple) and len(record.args) == 2:
            sql, values = record.args
            self.statements.append(Statement(str(sql), list(values or [])))

    def selects(self, table: str | None = None) -> list[Statement]:
        """SELECT statements, those reading FROM `table` when it is given."""
        return [s for s in self.statements if s.is_select and (table is None or f'FROM "{table}"' in s.sql)]


@contextmanager
def captured() -> Iterator[Captured]:
    """`with captured() as handler:` records every statement run inside the block
    (opening and closing connections are logged there too, and are not statements)."""
    logger = logging.getLogger("tortoise.db_client")
    handler = Captured()
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the block's statements are ours, not the log capture's
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.level, logger.propagate = saved


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """`with counted_statements() as statements:` the text of every statement run inside
    the block, in order, once the block has ended (its len is the count)."""
    statements: list[str] = []
    with captured() as handler:
        yield statements
    statements.extend(statement.sql for statement in handler.statements)


def is_postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def plan(statement: Statement) -> list[str]:
    """The database's plan for `statement`, one line per plan node."""
    async with in_transaction() as connection:
        if is_postgres():
            await connection.execute_script("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
            _, rows = await connection.execute_query("EXPLAIN " + statement.sql, statement.values)
            return [row["QUERY PLAN"] for row in rows]
        _, rows = await connection.execute_query("EXPLAIN QUERY PLAN " + statement.sql, statement.values)
        return [row["detail"] for row in rows]


def plan_problems(lines: list[str], table: str) -> list[str]:
    """What in a plan shows that `table` is read or sorted whole rather than through an
    index in the query's order: a full scan without an index, or a sort of the rows."""
    problems = []
    for line in lines:
        if is_postgres():
            if "Sort" in line or f"Seq Scan on {table}" in line:
                problems.append(line.strip())
        elif "USE TEMP B-TREE" in line or (line.startswith(f"SCAN {table}") and "INDEX" not in line):
            problems.append(line)
    return problems
