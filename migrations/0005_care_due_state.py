from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_scale_lists')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Member',
            name='care_due_since',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='care_priority',
            field=fields.SmallIntField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='care_recheck_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='care_state_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='retention_miles',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Member',
            name='retention_segments',
            field=fields.IntField(default=0),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'status', 'care_priority', 'care_due_since', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['branch_id', 'status', 'care_priority', 'care_due_since', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['status', 'care_priority', 'care_due_since', 'id']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['care_recheck_on']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'care_recheck_on']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['branch_id', 'care_recheck_on']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['care_state_on']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'status', 'tier', 'care_last_contact_on', 'tier_valid_until', 'retention_miles', 'retention_segments']),
        ),
        ops.AddIndex(
            model_name='TierEvent',
            index=Index(fields=['office_id', 'effective_at']),
        ),
        ops.AddIndex(
            model_name='TierEvent',
            index=Index(fields=['branch_id', 'effective_at']),
        ),
        ops.AddIndex(
            model_name='TierEvent',
            index=Index(fields=['effective_at']),
        ),
    ]
