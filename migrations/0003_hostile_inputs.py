from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class AlterFieldOnServer(ops.AlterField):
    """AlterField for PostgreSQL only. Miles become 64-bit: PostgreSQL needs ALTER COLUMN
    ... TYPE BIGINT; SQLite's INTEGER already holds 64 bits whatever the declared type,
    and Tortoise alters an SQLite column by rebuilding the table, which drops its indexes
    and unique constraints (unique (source, external_ref) among them)."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is not None and state_editor.DIALECT == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [('models', '0002_vip_care')]

    initial = False

    operations = [
        AlterFieldOnServer(
            model_name='CreditLot',
            name='remaining',
            field=fields.BigIntField(),
        ),
        AlterFieldOnServer(
            model_name='LedgerEntry',
            name='qualifying_miles',
            field=fields.BigIntField(default=0),
        ),
        AlterFieldOnServer(
            model_name='LedgerEntry',
            name='redeemable_miles',
            field=fields.BigIntField(default=0),
        ),
        ops.AddIndex(
            model_name='LedgerEntry',
            index=Index(fields=['source', 'posted_at']),
        ),
        AlterFieldOnServer(
            model_name='Member',
            name='redeemable_miles',
            field=fields.BigIntField(default=0),
        ),
    ]
