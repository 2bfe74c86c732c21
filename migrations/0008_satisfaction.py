from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_care_reasons')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OfficeSatisfactionDay',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('office', fields.ForeignKeyField('models.Office', source_field='office_id', db_constraint=True, to_field='id', related_name='satisfaction_days', on_delete=OnDelete.RESTRICT)),
                ('on_date', fields.DateField()),
                ('scores', fields.IntField(default=0)),
                ('score_total', fields.IntField(default=0)),
            ],
            options={'table': 'office_satisfaction_day', 'app': 'models', 'unique_together': (('office_id', 'on_date'),), 'pk_attr': 'id', 'table_description': 'Satisfaction scores (1 to 5) given on one day in one office: on care calls that'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='CareCall',
            name='satisfaction',
            field=fields.SmallIntField(null=True),
        ),
        ops.AddField(
            model_name='Feedback',
            name='satisfaction',
            field=fields.SmallIntField(null=True),
        ),
    ]
