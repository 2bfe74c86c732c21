from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_job_lease')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GoodwillCredit',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('entry', fields.OneToOneField('models.LedgerEntry', source_field='entry_id', db_constraint=True, to_field='id', related_name='goodwill', on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='goodwill_credits', on_delete=OnDelete.RESTRICT)),
                ('feedback', fields.ForeignKeyField('models.Feedback', source_field='feedback_id', null=True, db_constraint=True, to_field='id', related_name='goodwill_credits', on_delete=OnDelete.RESTRICT)),
                ('office_id', fields.IntField()),
                ('branch_id', fields.IntField()),
                ('miles', fields.BigIntField()),
                ('reason', fields.CharField(max_length=300)),
                ('role', fields.CharField(max_length=8)),
                ('actor', fields.CharField(max_length=100)),
                ('credited_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'goodwill_credit', 'app': 'models', 'indexes': [Index(fields=['member_id', 'id']), Index(fields=['office_id', 'credited_at'])], 'pk_attr': 'id', 'table_description': 'The audit record of a goodwill credit (care.goodwill): who gave how many miles to'},
            bases=['Model'],
        ),
    ]
