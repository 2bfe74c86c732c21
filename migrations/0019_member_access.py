from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0018_contact_encryption')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MemberAccess',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=200)),
                ('role', fields.CharField(max_length=10)),
                ('partner_code', fields.CharField(null=True, max_length=12)),
                ('member_id', fields.IntField()),
                ('field_bits', fields.SmallIntField()),
            ],
            options={'table': 'member_access', 'app': 'models', 'indexes': [Index(fields=['member_id', 'at', 'id'])], 'pk_attr': 'id', 'table_description': "One caller's read of one member's personal fields in one request (members.access_log):"},
            bases=['Model'],
        ),
    ]
