"""The migrated database has every index and unique constraint the models declare.

Tortoise's migration runner alters an SQLite column by rebuilding its table, which once
dropped every index of the table (unique (source, external_ref) among them: idempotency
by externalRef silently gone). This test reads the indexes back from the database
itself, on SQLite and PostgreSQL, so such a migration cannot land again.
"""

from __future__ import annotations

import pytest
from tortoise import Tortoise, connections

pytestmark = pytest.mark.db


def _declared() -> set[tuple[str, tuple[str, ...], bool]]:
    """(table, columns, unique) of every index the models declare."""
    declared = set()
    for model in Tortoise.apps["models"].values():
        meta = model._meta
        for index in meta.indexes:
            fields = index.fields if hasattr(index, "fields") else index
            declared.add((meta.db_table, tuple(meta.fields_map[f].source_field or f if f in meta.fields_map else f for f in fields), False))
        for together in meta.unique_together:
            declared.add((meta.db_table, tuple(meta.fields_map[f].source_field or f for f in together), True))
        for name, field in meta.fields_map.items():
            if getattr(field, "unique", False) and not field.pk and field.source_field is None and name in meta.db_fields:
                declared.add((meta.db_table, (name,), True))
            elif getattr(field, "unique", False) and not field.pk and field.source_field:
                declared.add((meta.db_table, (field.source_field,), True))
    return declared


async def _existing(client) -> set[tuple[str, tuple[str, ...], bool]]:
    found = set()
    if client.capabilities.dialect == "sqlite":
        _, tables = await client.execute_query("SELECT name FROM sqlite_master WHERE type = 'table'")
        for table in (row["name"] for row in tables):
            _, indexes = await client.execute_query(f'PRAGMA index_list("{table}")')
            for index in indexes:
                _, columns = await client.execute_query(f'PRAGMA index_info("{index["name"]}")')
                found.add((table, tuple(c["name"] for c in sorted(columns, key=lambda c: c["seqno"])), bool(index["unique"])))
    else:
        _, rows = await client.execute_query(
            """SELECT t.relname AS table, i.indisunique AS unique,
                      array_agg(a.attname ORDER BY k.ordinality) AS columns
               FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
               CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ordinality)
               JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
               JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
               GROUP BY t.relname, i.indexrelid, i.indisunique"""
        )
        found = {(row["table"], tuple(row["columns"]), bool(row["unique"])) for row in rows}
    return found


async def test_every_declared_index_exists(database):
    existing = await _existing(connections.get("default"))
    missing = []
    for table, columns, unique in sorted(_declared()):
        matches = [(t, c, u) for t, c, u in existing if t == table and c == columns]
        if not matches or (unique and not any(u for _, _, u in matches)):
            missing.append((table, columns, "unique" if unique else "index"))
    assert not missing, missing
