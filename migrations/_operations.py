"""Migration operations of our own, for what Tortoise's do wrongly on one database.

The loader skips modules whose name starts with "_", so this is not a migration.
"""

from tortoise.migrations import operations as ops


class AlterFieldOnServer(ops.AlterField):
    """AlterField on PostgreSQL only. Tortoise alters an SQLite column by rebuilding its
    table, which drops the table's indexes and unique constraints (unique (source,
    external_ref) of the ledger among them; tests/members/test_migrated_schema.py
    checks). Used where SQLite needs no change: a column made 64-bit (SQLite's INTEGER
    holds 64 bits whatever the declared type), or a single-column index no longer
    declared (SQLite keeps it, unused but harmless)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class RunSQLByDialect(ops.RunSQL):
    """RunSQL with a list of statements per database (``sqlite=``, ``postgres=``): for what the two
    write differently, such as triggers (SQLite's bodies are inline, PostgreSQL's are
    functions)."""

    def __init__(self, *, sqlite, postgres, reverse_sqlite=None, reverse_postgres=None) -> None:
        super().__init__(sqlite, reverse_sql=reverse_sqlite)
        self.by_dialect = {"sqlite": (sqlite, reverse_sqlite), "postgres": (postgres, reverse_postgres)}

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None:
            await self._run_each(state_editor, self.by_dialect[state_editor.DIALECT][0])

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None:
            reverse = self.by_dialect[state_editor.DIALECT][1]
            if reverse is None:
                raise NotImplementedError("no reverse SQL for this database")
            await self._run_each(state_editor, reverse)

    @staticmethod
    async def _run_each(state_editor, statements: list[str]) -> None:
        """One statement per item, passed whole: the SQLite schema editor splits a text at
        every ";", which cuts a trigger's body apart."""
        for statement in statements:
            if state_editor.collect_sql:
                state_editor.collected_sql.append(statement)
            else:
                await state_editor.client.execute_query(statement)
