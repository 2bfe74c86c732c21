from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from loyalty.models import JobRunStatus, TierChangeReason

from migrations._operations import AlterFieldOnServer, RunSQLByDialect


class Migration(migrations.Migration):
    dependencies = [('models', '0021_care_due_counts')]

    initial = False

    operations = [
        # Breakage (loyalty.liability): what the expiry job took from each lot.
        ops.AddField(
            model_name='CreditLot',
            name='expired',
            # db_default: the column is NOT NULL and the lots already stored need a value.
            field=fields.BigIntField(default=0, db_default=0),
        ),
        # A default in the database too: the flight writer inserts lots by SQL text naming
        # only its columns (SQLite's added column has it already).
        RunSQLByDialect(
            sqlite=[],
            postgres=["ALTER TABLE credit_lot ALTER COLUMN expired SET DEFAULT 0"],
            reverse_sqlite=[],
            reverse_postgres=["ALTER TABLE credit_lot ALTER COLUMN expired DROP DEFAULT"],
        ),
        # RULE_CHANGE (11 characters) as a tier change's reason. SQLite does not enforce
        # a varchar's length, and rebuilding tier_event there would drop its indexes.
        AlterFieldOnServer(
            model_name='TierEvent',
            name='reason',
            field=fields.CharEnumField(description='UPGRADE: UPGRADE\nRETENTION: RETENTION\nDOWNGRADE: DOWNGRADE\nMANUAL: MANUAL\nREVERSAL: REVERSAL\nRULE_CHANGE: RULE_CHANGE', enum_type=TierChangeReason, max_length=12),
        ),
        ops.CreateModel(
            name='RulesChangeRun',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rules_hash', fields.CharField(max_length=64, db_index=True)),
                ('rules_path', fields.CharField(max_length=300)),
                ('actor', fields.CharField(max_length=100)),
                ('day', fields.DateField()),
                ('status', fields.CharEnumField(description='RUNNING: RUNNING\nDONE: DONE\nFAILED: FAILED', enum_type=JobRunStatus, max_length=8)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome', fields.TextField(null=True, unique=False)),
                ('counts', fields.JSONField(null=True)),
            ],
            options={'table': 'rules_change_run', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The audit record of one `loyalty rules apply` (loyalty.rulechange): who applied'},
            bases=['Model'],
        ),
        # Breakage by credit month reads the credits (entries adding redeemable miles) of
        # the months asked, and no other entry: a partial index on their activity day.
        ops.RunSQL(
            "CREATE INDEX ledger_entry_credit_day ON ledger_entry (activity_date) WHERE redeemable_miles > 0",
            reverse_sql="DROP INDEX ledger_entry_credit_day",
        ),
    ]
