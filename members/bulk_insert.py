"""INSERT of many rows of one model in a few statements, and SELECT by a list of keys,
for bulk jobs.

Building a Tortoise object per row costs about 100 µs (ten times the insert itself), so
a bulk job hands plain tuples of the columns it sets and every other column takes the
model's own default (auto_now(_add) times, `default=`, or NULL). The column list comes
from the model's fields map, so a column added to the model later fills itself."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Iterable, Sequence
from functools import cache
from typing import Any

from tortoise import fields, timezone
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

# Values of these field types go to the driver as they are; others through to_db_value.
_NATIVE_FIELDS = (fields.CharField, fields.IntField, fields.BigIntField, fields.TextField, fields.DateField)


# Multi-row INSERT statements by (table, columns, dialect, rows, returning): a bulk job
# inserts the same shapes batch after batch, and building one costs about 10 ms.
_SQL_CACHE: dict[tuple, str] = {}
# Bound parameters per statement: SQLite allows 32,766 (since 3.32), PostgreSQL 32,767.
_MAX_PARAMETERS = 32_000


def numbered(connection: BaseDBAsyncClient, sql: str) -> str:
    """SQL text written with `?` parameters, in the connection's style (PostgreSQL:
    $1, $2...). The text must hold no other question mark."""
    if connection.capabilities.dialect != "postgres":
        return sql
    parts = sql.split("?")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


def _marks(connection: BaseDBAsyncClient, count: int) -> str:
    postgres = connection.capabilities.dialect == "postgres"
    return ", ".join(f"${n}" if postgres else "?" for n in range(1, count + 1))


async def prefer_index_lookups(connection: BaseDBAsyncClient) -> None:
    """On PostgreSQL, no sequential scans for the rest of the transaction. A bulk load
    grows a table faster than autovacuum refreshes its statistics (a freshly loaded table
    reads as empty), and the planner then answers each key lookup of a batch with a scan
    of the whole table: the load turns quadratic. Its lookups are all by unique index."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("SET LOCAL enable_seqscan = off")


async def select_in(
    connection: BaseDBAsyncClient, model: type[Model], columns: Sequence[str], key: str, values: Collection[Any]
) -> list[tuple]:
    """`SELECT columns FROM model's table WHERE key IN values`, as tuples. Built as SQL
    text: the query builder spends about 10 ms on an IN list of 500."""
    names = ", ".join(f'"{model._meta.fields_db_projection.get(column, column)}"' for column in columns)
    key_column = model._meta.fields_db_projection.get(key, key)
    sql = (f'SELECT {names} FROM "{model._meta.db_table}" '
           f'WHERE "{key_column}" IN ({_marks(connection, len(values))})')
    _, rows = await connection.execute_query(sql, list(values))
    return [tuple(row) for row in rows]


@cache
def _text_times(model: type[Model], columns: tuple[str, ...]) -> tuple[tuple[int, Callable[[str], Any]], ...]:
    """Positions of `columns` that hold dates or times, with Python's own ISO parser for each."""
    parsers = []
    for position, column in enumerate(columns):
        field = model._meta.fields_map.get(model._meta.fields_db_projection_reverse.get(column, column))
        if isinstance(field, fields.DatetimeField):
            parsers.append((position, datetime.datetime.fromisoformat))
        elif isinstance(field, fields.DateField):
            parsers.append((position, datetime.date.fromisoformat))
    return tuple(parsers)


def model_from_row(model: type[Model], columns: tuple[str, ...], row: Sequence[Any]) -> Model:
    """A model instance from a row of `columns` (db column names) read as SQL text,
    converted by Tortoise as a query would. SQLite hands dates and times back as ISO
    text, which Tortoise parses with iso8601 (about 8 µs a value, a dozen dates on a
    member: a sixth of a member read); Python's fromisoformat reads the same text in
    a tenth of that, and Tortoise then only applies the time zone. Text it does not
    read is left to Tortoise."""
    values = list(row)
    for position, parse in _text_times(model, columns):
        value = values[position]
        if isinstance(value, str):
            try:
                values[position] = parse(value)
            except ValueError:
                pass
    steps = _partial_steps(model, columns)
    if steps is None:
        return model._init_from_db(**dict(zip(columns, values)))
    # Some columns only (a compiled member read's, members.queries): the partial model
    # Tortoise's _init_from_db makes of them (`.only()`'s: it cannot be saved, an
    # attribute not read raises), with the conversions looked up once per shape, where
    # Tortoise builds two sets of all the model's fields on every call.
    instance = model.__new__(model)
    instance._partial = True
    instance._saved_in_db = True
    instance._custom_generated_pk = model._meta.db_pk_column not in model._meta.generated_db_fields
    instance._await_when_save = {}
    for position, attribute, convert, always in steps:
        value = values[position]
        if convert is not None and (always or value is not None):
            value = convert(value)
        _set(instance, attribute, value)
    return instance


_set = object.__setattr__  # as Tortoise's _init_from_db sets a row's values


@cache
def _partial_steps(model: type[Model], columns: tuple[str, ...]) -> tuple[tuple[int, str, Any, bool], ...] | None:
    """For a row of some of the model's columns: (position, attribute, conversion or
    None, whether the conversion also takes None) per column, as Tortoise's partial
    _init_from_db converts them; None when the row has every column (Tortoise's own
    whole-row path)."""
    meta = model._meta
    if set(columns) >= set(meta.fields_db_projection.values()):
        return None
    native = {key for key, _, _ in meta.db_native_fields}
    plain = {key for key, _, _ in meta.db_default_fields}
    steps = []
    for position, key in enumerate(columns):
        field = meta.fields_map.get(key)
        if field is None:
            continue
        if key in native:
            convert, always = None, False
        elif key in plain:
            convert, always = field.field_type, False
        else:
            convert, always = field.to_python_value, True
        steps.append((position, meta.fields_db_projection_reverse.get(key, key), convert, always))
    return tuple(steps)


class BulkInsert:
    """`await BulkInsert(Model, ["a", "b"]).run(connection, [(a1, b1), (a2, b2)])`."""

    def __init__(self, model: type[Model], given: Sequence[str]) -> None:
        meta = model._meta
        self.model = model
        self.given = list(given)
        self.defaulted = [
            name for name in meta.fields_db_projection
            if name not in self.given and not meta.fields_map[name].generated
        ]
        for name in self.defaulted:
            field = meta.fields_map[name]
            if not (field.null or field.default is not None or getattr(field, "auto_now_add", False)):
                raise ValueError(f"{model.__name__}.{name} has no default: a bulk insert must give it")
        columns = [meta.fields_db_projection[name] for name in self.given + self.defaulted]
        self._converters: list[Callable[[Any], Any] | None] = [
            None if type(meta.fields_map[name]) in _NATIVE_FIELDS else self._converter(meta.fields_map[name])
            for name in self.given
        ]
        self._columns = columns

    @staticmethod
    def _converter(field: fields.Field) -> Callable[[Any], Any]:
        """A field's to_db_value, with a shortcut for the values bulk writers hand most
        (an enum member, an aware datetime), which it would return unchanged after a few
        microseconds of checks: a tenth of a demo's build (api.demo) went there."""
        convert = field.to_db_value
        if isinstance(field, fields.DatetimeField):
            return lambda value: (
                value if type(value) is datetime.datetime and value.tzinfo is not None else convert(value, None))
        enum_type = getattr(field, "enum_type", None)
        if enum_type is not None:
            cast = int if issubclass(enum_type, int) else str
            return lambda value: cast(value.value) if type(value) is enum_type else convert(value, None)
        return lambda value: convert(value, None)

    def _default_values(self) -> tuple:
        """The defaulted columns' values for rows inserted now."""
        now = timezone.now()
        values = []
        for name in self.defaulted:
            field = self.model._meta.fields_map[name]
            if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = now
            else:
                value = field.default() if callable(field.default) else field.default
            values.append(field.to_db_value(value, None))
        return tuple(values)

    def sql(self, connection: BaseDBAsyncClient) -> str:
        names = ", ".join(f'"{column}"' for column in self._columns)
        return f'INSERT INTO "{self.model._meta.db_table}" ({names}) VALUES ({_marks(connection, len(self._columns))})'

    def values(self, rows: Iterable[Sequence[Any]]) -> list[tuple]:
        """The parameter tuples of the rows: given columns converted, defaults appended."""
        defaults = self._default_values()
        converting = [(position, convert) for position, convert in enumerate(self._converters) if convert is not None]
        if not converting:
            return [(*row, *defaults) for row in rows]
        out = []
        for row in rows:
            values = [*row, *defaults]
            for position, convert in converting:
                values[position] = convert(values[position])
            out.append(tuple(values))
        return out

    def _multi_row_sql(self, connection: BaseDBAsyncClient, count: int, returning: Sequence[str]) -> str:
        width = len(self._columns)
        postgres = connection.capabilities.dialect == "postgres"
        rows = ", ".join(
            "(" + ", ".join(f"${first + n}" if postgres else "?" for n in range(width)) + ")"
            for first in range(1, count * width + 1, width)
        )
        names = ", ".join(f'"{column}"' for column in self._columns)
        sql = f'INSERT INTO "{self.model._meta.db_table}" ({names}) VALUES {rows}'
        if returning:
            sql += " RETURNING " + ", ".join(f'"{self.model._meta.fields_db_projection[c]}"' for c in returning)
        return sql

    def statement(self, connection: BaseDBAsyncClient, rows: Iterable[Sequence[Any]]) -> tuple[str, list]:
        """The SQL and parameters of ONE INSERT of these rows (a few: within the parameter
        limit), for a caller that runs it itself (members.driver)."""
        return self._statement(connection, self.values(rows), ())

    def _statement(self, connection: BaseDBAsyncClient, chunk: list[tuple], returning: Sequence[str]) -> tuple[str, list]:
        key = (self.model._meta.db_table, tuple(self._columns), connection.capabilities.dialect, len(chunk),
               tuple(returning))
        sql = _SQL_CACHE.get(key)
        if sql is None:
            sql = _SQL_CACHE[key] = self._multi_row_sql(connection, len(chunk), returning)
        return sql, [value for row in chunk for value in row]

    async def run(
        self, connection: BaseDBAsyncClient, rows: Iterable[Sequence[Any]], returning: Sequence[str] = ()
    ) -> list[tuple]:
        """Insert the rows with multi-row INSERT statements (as many rows per statement as
        the parameter limit allows); the `returning` columns of the inserted rows.

        One statement for many rows rather than an executemany: about 30 % faster on
        SQLite (one statement step instead of one per row), and `RETURNING` (SQLite since
        3.35, PostgreSQL) gives the new ids without another query."""
        values = self.values(rows)
        per_statement = max(1, _MAX_PARAMETERS // len(self._columns))
        returned: list[tuple] = []
        for start in range(0, len(values), per_statement):
            sql, parameters = self._statement(connection, values[start:start + per_statement], returning)
            if returning:
                returned += [tuple(row.values()) for row in await connection.execute_query_dict(sql, parameters)]
            else:
                await connection.execute_query(sql, parameters)
        return returned
