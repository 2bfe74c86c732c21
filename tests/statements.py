"""Counting the SQL statements a block of code runs, on SQLite and PostgreSQL alike.

Tortoise's clients log every statement they execute (execute_query, execute_query_dict,
execute_insert, execute_many, execute_script) to the "tortoise.db_client" logger at
DEBUG, with the same call on every backend; opening and closing connections log there
too and are not statements.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

LOGGER = "tortoise.db_client"
NOT_STATEMENTS = ("Created connection", "Closed connection")


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith(NOT_STATEMENTS):
            self.statements.append(message)


@contextmanager
def counted_statements() -> Iterator[list[str]]:
    """`with counted_statements() as statements:` collects, in order, the text of every
    statement run inside the block (its len is the count)."""
    logger = logging.getLogger(LOGGER)
    collector = _Collector()
    saved = (logger.level, logger.propagate)
    logger.addHandler(collector)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # the block's statements are ours, not the log capture's
    try:
        yield collector.statements
    finally:
        logger.removeHandler(collector)
        logger.level, logger.propagate = saved
