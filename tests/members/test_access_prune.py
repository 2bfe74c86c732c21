"""The access audit's retention (members.access_log.prune_access): the rows read before
the cutoff go, in chunks, with progress; a dry run counts them; what it reads goes
through the index on `at`, so its cost follows the rows due, not the table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from members.access_log import PersonalField, prune_access
from members.models import MemberAccess
from tests.statements import captured, is_postgres, plan

NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)


async def reads(*days_ago: int) -> None:
    for n, days in enumerate(days_ago):
        await MemberAccess.create(at=NOW - timedelta(days=days), actor="office:clerk@PEK01", role="office",
                                  member_id=100 + n, field_bits=PersonalField.PHONE)


async def test_prune_removes_the_reads_before_the_cutoff_in_chunks(db):
    await reads(400, 366, 365, 10, 500)  # ids in writing order, not read order (a late write)
    cutoff = NOW - timedelta(days=365)
    assert await prune_access(cutoff, dry_run=True) == 3 and await MemberAccess.all().count() == 5
    seen = []
    assert await prune_access(cutoff, chunk=1, progress=lambda done, total: seen.append((done, total))) == 3
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    kept = await MemberAccess.all().order_by("id").values_list("member_id", "at")
    assert kept == [(102, NOW - timedelta(days=365)), (103, NOW - timedelta(days=10))]  # the cutoff itself is kept
    seen.clear()
    assert await prune_access(cutoff, progress=lambda done, total: seen.append((done, total))) == 0
    assert seen == [(0, 0)]


async def test_prune_reads_the_rows_due_through_the_index_on_at(db):
    await reads(400, 10)
    with captured() as statements:
        await prune_access(NOW - timedelta(days=365))
    selects = statements.selects("member_access")
    assert len(selects) == 2  # the count, then one chunk's keys (short: the last)
    for statement in selects:
        lines = await plan(statement)
        by_at = "Index Cond: (at <" if is_postgres() else "INDEX idx_member_acce_at_"
        assert any(by_at in line for line in lines), (statement.sql, lines)
        whole = "Seq Scan on member_access" if is_postgres() else "SCAN member_access"
        assert not any(line.strip() == whole or line.strip().startswith(whole + " ") for line in lines), lines
