from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.models import ClaimStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_partner_statements')]

    initial = False

    operations = [
        ops.CreateModel(
            name='MilesClaim',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='miles_claims', on_delete=OnDelete.RESTRICT)),
                ('carrier', fields.CharField(max_length=3)),
                ('flight_number', fields.CharField(max_length=8)),
                ('flight_date', fields.DateField()),
                ('origin', fields.CharField(max_length=3)),
                ('destination', fields.CharField(max_length=3)),
                ('distance_km', fields.IntField()),
                ('fare_class', fields.CharField(max_length=1)),
                ('status', fields.CharEnumField(default=ClaimStatus.PENDING, description='PENDING: PENDING\nAPPROVED: APPROVED\nREJECTED: REJECTED', enum_type=ClaimStatus, max_length=8)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('submitted_on', fields.DateField()),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.CharField(null=True, max_length=100)),
                ('reason', fields.CharField(null=True, max_length=300)),
                ('entry', fields.OneToOneField('models.LedgerEntry', source_field='entry_id', null=True, db_constraint=True, to_field='id', related_name='claim', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'miles_claim', 'app': 'models', 'indexes': [Index(fields=['member_id', 'submitted_at', 'id']), Index(fields=['status', 'submitted_at', 'id']), Index(fields=['submitted_at', 'id'])], 'pk_attr': 'id', 'table_description': "A member's claim for a flight that was not credited (loyalty.claims): PENDING"},
            bases=['Model'],
        ),
    ]
