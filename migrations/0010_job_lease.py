from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from loyalty.models import JobRunStatus
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_greetings_sent')]

    initial = False

    operations = [
        ops.CreateModel(
            name='JobRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.CharField(max_length=32)),
                ('day', fields.DateField()),
                ('status', fields.CharEnumField(description='RUNNING: RUNNING\nDONE: DONE\nFAILED: FAILED', enum_type=JobRunStatus, max_length=8)),
                ('owner', fields.CharField(max_length=100)),
                ('lease_until', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.SmallIntField(default=1)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.TextField(null=True, unique=False)),
                ('counts', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'job_run', 'app': 'models', 'unique_together': (('job', 'day'),), 'pk_attr': 'id', 'table_description': 'One daily job (tiers review, miles expiry, care refresh) for one programme day:'},
            bases=['Model'],
        ),
    ]
