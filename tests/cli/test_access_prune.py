"""`loyalty access prune [--before DATE] [--dry-run]` as an operator runs it: the access
audit's reads older than LOYALTY_ACCESS_LOG_DAYS (or before --before) go, with progress
and a one-line summary; mistakes are one line."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from members.access_log import PersonalField
from members.models import MemberAccess
from tests.api.loyalty_factories import loyalty_cli
from tests.cli.conftest import one_line_error, run


async def test_prune_by_the_retention_or_a_day(db, tmp_path):
    today = datetime.now(db.tz).date()
    midnight = datetime.combine(today, time(0), db.tz).astimezone(timezone.utc)
    for n, days in enumerate((400, 366, 365, 30, 1)):
        await MemberAccess.create(at=midnight - timedelta(days=days, seconds=-1), actor="admin:a", role="admin",
                                  member_id=n + 1, field_bits=PersonalField.EMAIL)
    default_cutoff = today - timedelta(days=365)
    dry = run(db, tmp_path, "access", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout == f"access prune before {default_cutoff}: 2 access row(s) removed (dry run: nothing written)\n"
    gone = run(db, tmp_path, "access", "prune")
    assert gone.stdout == f"access prune before {default_cutoff}: 2 access row(s) removed\n"
    assert "access prune: [####################] 2/2 (100%)" in gone.stderr
    assert sorted(await MemberAccess.all().values_list("member_id", flat=True)) == [3, 4, 5]
    # The setting shortens it; --before names the first day kept.
    short = loyalty_cli(["access", "prune"], tmp_path, db.database_url, LOYALTY_ACCESS_LOG_DAYS="30")
    assert short.stdout == f"access prune before {today - timedelta(days=30)}: 1 access row(s) removed\n"
    yesterday = today - timedelta(days=1)
    before = run(db, tmp_path, "access", "prune", "--before", yesterday.isoformat())
    assert before.stdout == f"access prune before {yesterday}: 1 access row(s) removed\n"
    assert await MemberAccess.all().values_list("member_id", flat=True) == [5]


async def test_operator_mistakes_are_one_line(db, tmp_path):
    tomorrow = datetime.now(db.tz).date() + timedelta(days=1)
    line = one_line_error(run(db, tmp_path, "access", "prune", "--before", tomorrow.isoformat()), 1)
    assert "is after today" in line
    assert "is not a date" in one_line_error(run(db, tmp_path, "access", "prune", "--before", "soon"), 2)
    bad = loyalty_cli(["access", "prune"], tmp_path, db.database_url, LOYALTY_ACCESS_LOG_DAYS="0")
    assert "LOYALTY_ACCESS_LOG_DAYS='0' must be a positive whole number" in one_line_error(bad, 2)
