from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_vip_care')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='CreditLot',
            name=None,
            fields=['expires_on', 'remaining'],
        ),
        ops.RemoveIndex(
            model_name='Member',
            name=None,
            fields=['office_id', 'tier', 'family_name'],
        ),
        ops.RemoveIndex(
            model_name='Member',
            name=None,
            fields=['branch_id', 'tier', 'family_name'],
        ),
        ops.AlterField(
            model_name='Member',
            name='branch_id',
            field=fields.IntField(),
        ),
        ops.AlterField(
            model_name='Member',
            name='tier_valid_until',
            field=fields.DateField(null=True),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['tier', 'family_name', 'given_name', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'tier', 'family_name', 'given_name', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['branch_id', 'tier', 'family_name', 'given_name', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['tier', 'card_number']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'tier', 'card_number']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['branch_id', 'tier', 'card_number']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['tier', 'enrolled_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'tier', 'enrolled_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['branch_id', 'tier', 'enrolled_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['tier_valid_until', 'id']),
        ),
            # A partial index Tortoise's Index cannot declare (its PartialIndex takes only
        # equalities): the open lots by expiry date, read by `loyalty miles expire`.
        ops.RunSQL(
            "CREATE INDEX credit_lot_open_expiry ON credit_lot (expires_on, member_id) WHERE remaining > 0",
            reverse_sql="DROP INDEX credit_lot_open_expiry",
        ),
    ]
