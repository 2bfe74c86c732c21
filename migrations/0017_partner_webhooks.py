from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.models import WebhookStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0016_privacy')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PartnerWebhook',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.OneToOneField('models.Partner', source_field='partner_id', db_constraint=True, to_field='id', related_name='webhook', on_delete=OnDelete.RESTRICT)),
                ('url', fields.CharField(max_length=500)),
                ('secret', fields.CharField(max_length=100)),
                ('status', fields.CharEnumField(default=WebhookStatus.ACTIVE, description='ACTIVE: ACTIVE\nPAUSED: PAUSED', enum_type=WebhookStatus, max_length=8)),
                ('cursor', fields.BigIntField(default=0)),
                ('failures', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(null=True, max_length=300)),
                ('paused_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_owner', fields.CharField(null=True, max_length=100)),
                ('lease_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('secret_set_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_webhook', 'app': 'models', 'indexes': [Index(fields=['status', 'next_attempt_at'])], 'pk_attr': 'id', 'table_description': "A partner's webhook (loyalty.webhooks): the tier changes the partner may see, POSTed"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('webhook', fields.ForeignKeyField('models.PartnerWebhook', source_field='webhook_id', db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.RESTRICT)),
                ('event_id', fields.BigIntField()),
                ('attempt', fields.IntField()),
                ('delivered', fields.BooleanField()),
                ('status_code', fields.IntField(null=True)),
                ('error', fields.CharField(null=True, max_length=300)),
                ('duration_ms', fields.IntField()),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_delivery', 'app': 'models', 'indexes': [Index(fields=['webhook_id', 'at', 'id'])], 'pk_attr': 'id', 'table_description': "One attempt to deliver one event to a partner's webhook, kept as the delivery log:"},
            bases=['Model'],
        ),
    ]
