from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

from migrations._operations import AlterFieldOnServer


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
