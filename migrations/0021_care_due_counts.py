from tortoise import migrations

from migrations._operations import RunSQLByDialect

# Members due a care call per office (care.region_counts), kept in office_stats_count
# under measure 4 (slot 0) by triggers on the member table, as migration 0006 keeps the
# VIP care rollup: an ACTIVE member whose stored worklist state says due (care_priority
# >= 0) counts once at its office. careCallsDue's totalCount sums these rows of the
# offices in scope instead of counting an index entry per member due.
WATCHED = ("office_id", "status", "care_priority")
DUE = "{record}.status = 'ACTIVE' AND {record}.care_priority >= 0"


def _upsert(records: list[tuple[str, str]]) -> str:
    moves = " UNION ALL ".join(
        f"SELECT {record}.office_id AS office_id, {sign} AS delta WHERE {DUE.format(record=record)}" for record, sign in records
    )
    return (
        "INSERT INTO office_stats_count (office_id, measure, slot, members) "
        f"SELECT office_id, 4, 0, SUM(delta) FROM ({moves}) AS moves WHERE true "
        "GROUP BY office_id HAVING SUM(delta) <> 0 ORDER BY office_id "
        "ON CONFLICT (office_id, measure, slot) DO UPDATE SET members = office_stats_count.members + excluded.members"
    )


# (event, records, condition): inserts and deletes of members never due cost no upsert.
EVENTS = {
    "insert": ("INSERT", [("NEW", "1")], DUE.format(record="NEW")),
    "update": ("UPDATE OF " + ", ".join(WATCHED), [("OLD", "-1"), ("NEW", "1")], None),
    "delete": ("DELETE", [("OLD", "-1")], DUE.format(record="OLD")),
}
FILL = (
    "INSERT INTO office_stats_count (office_id, measure, slot, members) "
    "SELECT m.office_id, 4, 0, COUNT(*) FROM member m WHERE m.status = 'ACTIVE' AND m.care_priority >= 0 GROUP BY m.office_id"
)


def _statements(dialect: str) -> list[str]:
    statements = []
    for name, (event, records, condition) in EVENTS.items():
        trigger = f"member_due_count_{name}"
        changed = "IS DISTINCT FROM" if dialect == "postgres" else "IS NOT"
        if condition is None:
            condition = " OR ".join(f"OLD.{c} {changed} NEW.{c}" for c in WATCHED)
        if dialect == "postgres":
            statements.append(f"CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {_upsert(records)}; RETURN NULL; END $$")
            statements.append(f"CREATE TRIGGER {trigger} AFTER {event} ON member FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION {trigger}()")
        else:
            statements.append(f"CREATE TRIGGER {trigger} AFTER {event} ON member FOR EACH ROW WHEN ({condition}) BEGIN {_upsert(records)}; END")
    return statements + [FILL]


class Migration(migrations.Migration):
    dependencies = [('models', '0020_stats_counts')]

    initial = False

    operations = [
        RunSQLByDialect(
            sqlite=_statements("sqlite"),
            postgres=_statements("postgres"),
            reverse_sqlite=[f"DROP TRIGGER member_due_count_{name}" for name in EVENTS] + ["DELETE FROM office_stats_count WHERE measure = 4"],
            reverse_postgres=[s for name in EVENTS for s in (
                f"DROP TRIGGER member_due_count_{name} ON member", f"DROP FUNCTION member_due_count_{name}()"
            )] + ["DELETE FROM office_stats_count WHERE measure = 4"],
        ),
    ]
