from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_satisfaction')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GreetingSent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('greeting_key', fields.CharField(unique=True, max_length=200)),
                ('kind', fields.CharField(max_length=8)),
                ('on_date', fields.DateField()),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name='greetings_sent', on_delete=OnDelete.RESTRICT)),
                ('office_id', fields.IntField()),
                ('branch_id', fields.IntField()),
                ('festival', fields.CharField(null=True, max_length=100)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=100)),
            ],
            options={'table': 'greeting_sent', 'app': 'models', 'pk_attr': 'id', 'table_description': "A greeting staff marked as sent (care.greetings): a member's birthday greeting, or"},
            bases=['Model'],
        ),
    ]
