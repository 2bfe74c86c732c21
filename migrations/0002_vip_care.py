from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from care.models import CallOutcome, FeedbackChannel, FeedbackKind, FeedbackStatus
from json import dumps, loads
from members.enums import LifecycleStage, ValueSegment
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CareCall',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='care_calls', on_delete=OnDelete.RESTRICT)),
                ('office_id', fields.IntField()),
                ('branch_id', fields.IntField()),
                ('called_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharEnumField(description='REACHED: REACHED\nNO_ANSWER: NO_ANSWER\nDECLINED: DECLINED\nWRONG_NUMBER: WRONG_NUMBER', enum_type=CallOutcome, max_length=12)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('needs', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('follow_up_on', fields.DateField(null=True)),
                ('actor', fields.CharField(max_length=100)),
            ],
            options={'table': 'care_call', 'app': 'models', 'indexes': [Index(fields=['member_id', 'called_at']), Index(fields=['office_id', 'called_at'])], 'pk_attr': 'id', 'table_description': 'One call made by office staff to a member. Append-only.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Feedback',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='feedback', on_delete=OnDelete.RESTRICT)),
                ('office_id', fields.IntField()),
                ('branch_id', fields.IntField()),
                ('kind', fields.CharEnumField(description='COMPLAINT: COMPLAINT\nSUGGESTION: SUGGESTION\nPRAISE: PRAISE\nINQUIRY: INQUIRY', enum_type=FeedbackKind, max_length=10)),
                ('channel', fields.CharEnumField(description='APP: APP\nWEB: WEB\nPHONE: PHONE\nEMAIL: EMAIL\nCOUNTER: COUNTER\nSOCIAL: SOCIAL', enum_type=FeedbackChannel, max_length=8)),
                ('subject', fields.CharField(max_length=200)),
                ('text', fields.TextField(unique=False)),
                ('status', fields.CharEnumField(default=FeedbackStatus.OPEN, description='OPEN: OPEN\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nCLOSED: CLOSED', enum_type=FeedbackStatus, max_length=12)),
                ('resolution', fields.TextField(null=True, unique=False)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('respond_by', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('submitted_by', fields.CharField(max_length=100)),
            ],
            options={'table': 'feedback', 'app': 'models', 'indexes': [Index(fields=['office_id', 'status', 'id']), Index(fields=['branch_id', 'status', 'id']), Index(fields=['member_id', 'id'])], 'pk_attr': 'id', 'table_description': "A complaint, suggestion, praise or inquiry, routed to the member's office."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='FeedbackChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('feedback', fields.ForeignKeyField('models.Feedback', source_field='feedback_id', db_constraint=True, to_field='id', related_name='changes', on_delete=OnDelete.RESTRICT)),
                ('from_status', fields.CharEnumField(null=True, description='OPEN: OPEN\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nCLOSED: CLOSED', enum_type=FeedbackStatus, max_length=12)),
                ('to_status', fields.CharEnumField(description='OPEN: OPEN\nIN_PROGRESS: IN_PROGRESS\nRESOLVED: RESOLVED\nCLOSED: CLOSED', enum_type=FeedbackStatus, max_length=12)),
                ('note', fields.TextField(null=True, unique=False)),
                ('actor', fields.CharField(max_length=100)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'feedback_change', 'app': 'models', 'pk_attr': 'id', 'table_description': 'History of a feedback item: every status change, who made it and why.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='care_follow_up_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='care_last_contact_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='care_refreshed_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='lifecycle_stage',
            field=fields.CharEnumField(default=LifecycleStage.NEW, description='NEW: NEW\nGROWING: GROWING\nSTABLE: STABLE\nDECLINING: DECLINING\nDORMANT: DORMANT', enum_type=LifecycleStage, max_length=10),
        ),
        ops.AddField(
            model_name='Member',
            name='value_segment',
            field=fields.CharEnumField(default=ValueSegment.LOW, description='HIGH: HIGH\nMEDIUM: MEDIUM\nLOW: LOW', enum_type=ValueSegment, max_length=6),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'lifecycle_stage']),
        ),
        ops.AddIndex(
            model_name='Member',
            index=Index(fields=['office_id', 'value_segment']),
        ),
    ]
