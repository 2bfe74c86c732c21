from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

from migrations._operations import RunSQLByDialect

# Triggers that keep office_stats_count (care.region_counts) in the writer's transaction,
# as the member triggers of 0006 keep office_care_count: each moves the old row's
# contribution out and the new row's in, as ONE upsert of the net changes in key order.
#
# tier_event: a change (to_tier <> from_tier) counts under measure 0 (up) or 1 (down) on
# the local day of effective_at, read from stats_zone (the latest row whose `since` is at
# or before the instant: day + whole days since then; -1 before the first row or while
# the table is empty, and care.region_counts rebuilds when it fills it).
# feedback: an open complaint (OPEN, IN_PROGRESS) counts under measure 2 (slot 0) and
# under measure 3 on the UTC hour of respond_by (NO_DUE_HOUR without one).
NO_DUE_HOUR = 1_000_000_000
EVENT_WATCHED = ("office_id", "from_tier", "to_tier", "effective_at")
FEEDBACK_WATCHED = ("office_id", "kind", "status", "respond_by")


def _epoch(dialect: str, column: str) -> str:
    if dialect == "postgres":
        return f"CAST(floor(extract(epoch FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def local_day(dialect: str, column: str) -> str:
    """The local day (days since 1970-01-01) of the instant in `column`, from stats_zone."""
    epoch = _epoch(dialect, column)
    return (f"COALESCE((SELECT z.day + ({epoch} - z.since) / 86400 FROM stats_zone z WHERE z.since <= {epoch} "
            "ORDER BY z.since DESC LIMIT 1), -1)")


def due_hour(dialect: str, column: str) -> str:
    return f"COALESCE({_epoch(dialect, column)} / 3600, {NO_DUE_HOUR})"


def _event_moves(dialect: str, record: str, sign: str) -> list[str]:
    return [
        f"SELECT {record}.office_id AS office_id, CASE WHEN {record}.to_tier > {record}.from_tier THEN 0 ELSE 1 END "
        f"AS measure, {local_day(dialect, f'{record}.effective_at')} AS slot, {sign} AS delta "
        f"WHERE {record}.to_tier <> {record}.from_tier",
    ]


def _feedback_moves(dialect: str, record: str, sign: str) -> list[str]:
    open_ = f"{record}.kind = 'COMPLAINT' AND {record}.status IN ('OPEN', 'IN_PROGRESS')"
    return [
        f"SELECT {record}.office_id AS office_id, 2 AS measure, 0 AS slot, {sign} AS delta WHERE {open_}",
        f"SELECT {record}.office_id, 3, {due_hour(dialect, f'{record}.respond_by')}, {sign} WHERE {open_}",
    ]


def _upsert(dialect: str, moves_of, records: list[tuple[str, str]]) -> str:
    moves = " UNION ALL ".join(move for record, sign in records for move in moves_of(dialect, record, sign))
    return (
        "INSERT INTO office_stats_count (office_id, measure, slot, members) "
        f"SELECT office_id, measure, slot, SUM(delta) FROM ({moves}) AS moves WHERE true "
        "GROUP BY office_id, measure, slot HAVING SUM(delta) <> 0 ORDER BY office_id, measure, slot "
        "ON CONFLICT (office_id, measure, slot) DO UPDATE SET members = office_stats_count.members + excluded.members"
    )


TABLES = {"tier_event": (_event_moves, EVENT_WATCHED), "feedback": (_feedback_moves, FEEDBACK_WATCHED)}
EVENTS = {
    "insert": ("INSERT", [("NEW", "1")]),
    "update": ("UPDATE OF {columns}", [("OLD", "-1"), ("NEW", "1")]),
    "delete": ("DELETE", [("OLD", "-1")]),
}


def _statements(dialect: str) -> list[str]:
    statements = []
    for table, (moves_of, watched) in TABLES.items():
        for name, (event, records) in EVENTS.items():
            event = event.format(columns=", ".join(watched))
            trigger = f"{table}_stats_count_{name}"
            changed = "IS DISTINCT FROM" if dialect == "postgres" else "IS NOT"
            when = "" if name != "update" else " WHEN (" + " OR ".join(f"OLD.{c} {changed} NEW.{c}" for c in watched) + ")"
            body = _upsert(dialect, moves_of, records)
            if dialect == "postgres":
                statements.append(f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {body}; RETURN NULL; END $$")
                statements.append(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW{when} EXECUTE FUNCTION {trigger}()")
            else:
                statements.append(f"CREATE TRIGGER {trigger} AFTER {event} ON {table} FOR EACH ROW{when} BEGIN {body}; END")
    return statements


def _reverse(dialect: str) -> list[str]:
    names = [f"{table}_stats_count_{name}" for table in TABLES for name in EVENTS]
    if dialect == "postgres":
        return [s for table in TABLES for name in EVENTS
                for s in (f"DROP TRIGGER {table}_stats_count_{name} ON {table}", f"DROP FUNCTION {table}_stats_count_{name}()")]
    return [f"DROP TRIGGER {name}" for name in names]


class Migration(migrations.Migration):
    dependencies = [('models', '0019_member_access')]

    initial = False

    operations = [
        ops.CreateModel(
            name='OfficeStatsCount',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('office', fields.ForeignKeyField('models.Office', source_field='office_id', db_constraint=True, to_field='id', related_name='stats_counts', on_delete=OnDelete.RESTRICT)),
                ('measure', fields.SmallIntField()),
                ('slot', fields.BigIntField()),
                ('members', fields.IntField(default=0)),
            ],
            options={'table': 'office_stats_count', 'app': 'models', 'unique_together': (('office_id', 'measure', 'slot'),), 'pk_attr': 'id', 'table_description': 'The region statistics rollup (care.region_counts): per office, measure and slot,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StatsZone',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('zone', fields.CharField(max_length=64)),
                ('since', fields.BigIntField(unique=True)),
                ('day', fields.IntField()),
            ],
            options={'table': 'stats_zone', 'app': 'models', 'pk_attr': 'id', 'table_description': "The programme's local days as the tier event triggers read them: from the instant"},
            bases=['Model'],
        ),
        ops.AddIndex(
            model_name='Feedback',
            index=Index(fields=['office_id', 'respond_by']),
        ),
        RunSQLByDialect(
            sqlite=_statements("sqlite"),
            postgres=_statements("postgres"),
            reverse_sqlite=_reverse("sqlite"),
            reverse_postgres=_reverse("postgres"),
        ),
    ]
