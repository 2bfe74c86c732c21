from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0015_claim_once')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MemberConsentChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='consent_changes', on_delete=OnDelete.RESTRICT)),
                ('consent', fields.CharField(max_length=16)),
                ('granted', fields.BooleanField()),
                ('actor', fields.CharField(max_length=100)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'member_consent_change', 'app': 'models', 'indexes': [Index(fields=['member_id', 'id'])], 'pk_attr': 'id', 'table_description': "History of a member's consents: each change of one consent, by whom and when."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberErasure',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.OneToOneField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='erasure', on_delete=OnDelete.RESTRICT)),
                ('erased_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.CharField(max_length=100)),
                ('reason', fields.CharField(max_length=300)),
            ],
            options={'table': 'member_erasure', 'app': 'models', 'pk_attr': 'id', 'table_description': "Audit of memberErase: who erased a member's personal data, when and why (the"},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='IdempotencyRecord',
            index=Index(fields=['operation', 'result_id']),
        ),
        ops.AddField(
            model_name='Member',
            name='consent_greetings',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='Member',
            name='consent_marketing',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Member',
            name='consents_updated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='erased_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
