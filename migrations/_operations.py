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
