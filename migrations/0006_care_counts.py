from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

from migrations._operations import RunSQLByDialect

# Triggers that keep office_care_count (care.counts) in the writer's transaction: each
# moves the old row's contribution out and the new row's in, as ONE upsert of the net
# changes in key order (two writers never take the same rollup rows in opposite orders;
# a key is never hit twice by one statement). A row counts when ACTIVE and tier >= 1:
# under measure 0 (VIPs) and 1 (last contact; never contacted: 0001-01-01) always, and
# under measure 2 (validity end) when short of both retain thresholds of its tier.
WATCHED = ("office_id", "status", "tier", "care_last_contact_on", "tier_valid_until", "retention_miles",
           "retention_segments")


def _moves(record: str, sign: str, never: str) -> list[str]:
    vip = f"{record}.status = 'ACTIVE' AND {record}.tier >= 1"
    threshold = "(SELECT t.{column} FROM care_retention_threshold t WHERE t.tier = {record}.tier)"
    short = (
        f"{record}.tier_valid_until IS NOT NULL"
        f" AND {record}.retention_miles < {threshold.format(column='retain_miles', record=record)}"
        f" AND {record}.retention_segments < {threshold.format(column='retain_segments', record=record)}"
    )
    return [
        f"SELECT {record}.office_id AS office_id, {record}.tier AS tier, 0 AS measure, {never} AS on_date, "
        f"{sign} AS delta WHERE {vip}",
        f"SELECT {record}.office_id, {record}.tier, 1, COALESCE({record}.care_last_contact_on, {never}), {sign} WHERE {vip}",
        f"SELECT {record}.office_id, {record}.tier, 2, {record}.tier_valid_until, {sign} WHERE {vip} AND {short}",
    ]


def _upsert(records: list[tuple[str, str]], never: str) -> str:
    moves = " UNION ALL ".join(move for record, sign in records for move in _moves(record, sign, never))
    return (
        "INSERT INTO office_care_count (office_id, tier, measure, on_date, members) "
        f"SELECT office_id, tier, measure, on_date, SUM(delta) FROM ({moves}) AS moves WHERE true "
        "GROUP BY office_id, tier, measure, on_date HAVING SUM(delta) <> 0 ORDER BY office_id, measure, on_date, tier "
        "ON CONFLICT (office_id, measure, on_date, tier) DO UPDATE SET members = office_care_count.members + excluded.members"
    )


EVENTS = {
    "insert": ("INSERT", [("NEW", "1")]),
    "update": ("UPDATE OF " + ", ".join(WATCHED), [("OLD", "-1"), ("NEW", "1")]),
    "delete": ("DELETE", [("OLD", "-1")]),
}


def _sqlite() -> list[str]:
    statements = []
    for name, (event, records) in EVENTS.items():
        when = ""
        if name == "update":
            when = " WHEN " + " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in WATCHED)
        statements.append(
            f"CREATE TRIGGER member_care_count_{name} AFTER {event} ON member FOR EACH ROW{when} "
            f"BEGIN {_upsert(records, chr(39) + '0001-01-01' + chr(39))}; END"
        )
    return statements


def _postgres() -> list[str]:
    statements = []
    for name, (event, records) in EVENTS.items():
        when = ""
        if name == "update":
            when = " WHEN (" + " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in WATCHED) + ")"
        statements.append(
            f"CREATE FUNCTION member_care_count_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_upsert(records, chr(68) + 'ATE ' + chr(39) + '0001-01-01' + chr(39))}; RETURN NULL; END $$"
        )
        statements.append(
            f"CREATE TRIGGER member_care_count_{name} AFTER {event} ON member FOR EACH ROW{when} "
            f"EXECUTE FUNCTION member_care_count_{name}()"
        )
    return statements

class Migration(migrations.Migration):
    dependencies = [('models', '0005_care_due_state')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CareRetentionThreshold',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tier', fields.SmallIntField(unique=True)),
                ('retain_miles', fields.BigIntField()),
                ('retain_segments', fields.IntField()),
            ],
            options={'table': 'care_retention_threshold', 'app': 'models', 'pk_attr': 'id', 'table_description': "The rules file's retain thresholds per VIP tier, as the member triggers read them"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='OfficeCareCount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('office', fields.ForeignKeyField('models.Office', source_field='office_id', db_constraint=True, to_field='id', related_name='care_counts', on_delete=OnDelete.RESTRICT)),
                ('tier', fields.SmallIntField()),
                ('measure', fields.SmallIntField()),
                ('on_date', fields.DateField()),
                ('members', fields.IntField(default=0)),
            ],
            options={'table': 'office_care_count', 'app': 'models', 'unique_together': (('office_id', 'measure', 'on_date', 'tier'),), 'pk_attr': 'id', 'table_description': 'The VIP care rollup that region statistics read (care.counts): per office, VIP'},
            bases=['Model'],
        ),
        RunSQLByDialect(
            sqlite=_sqlite(),
            postgres=_postgres(),
            reverse_sqlite=[f"DROP TRIGGER member_care_count_{name}" for name in EVENTS],
            reverse_postgres=[statement for name in EVENTS for statement in (
                f"DROP TRIGGER member_care_count_{name} ON member", f"DROP FUNCTION member_care_count_{name}()"
            )],
        ),
    ]
