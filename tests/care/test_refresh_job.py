"""`loyalty care refresh`: care.segments.refresh_segments on ledgers posted through the
real services, then the stages and segments it wrote.

as_of 2026-11-20 with the shipped rules: recent = 2026-05-21..2026-11-20, previous =
2025-11-21..2026-05-20, value window (12 months) = 2025-11-21..2026-11-20.
"""

from __future__ import annotations

from datetime import date

from care.segments import refresh_segments
from members.enums import LifecycleStage as Stage
from members.enums import ValueSegment as Segment
from members.models import Member, Office
from tests.care.history import RULES, credit, fly, member_at, undo

AS_OF = date(2026, 11, 20)
D = date.fromisoformat


async def snapshot(member: Member) -> tuple:
    row = await Member.get(id=member.id)
    return row.lifecycle_stage, row.value_segment, row.care_refreshed_on


async def build_histories() -> dict[str, Member]:
    m = {}
    # PEK01 -----------------------------------------------------------------------
    # growing: 2 flights before, 3 in the recent period (150 %); 5 x 1,100 = 5,500 miles
    m["growing"] = await member_at("PEK01", "Zhao", "Growing")
    for day in ("2025-12-10", "2026-04-01", "2026-06-01", "2026-08-01", "2026-11-20"):
        await fly(m["growing"], D(day))
    # declining: 4 partner credits before; recent: one flight kept (2,200 miles) and one
    # reversed (2 vs 4 would be STABLE; 1 vs 4 is DECLINING; 6,600 miles would be MEDIUM)
    m["declining"] = await member_at("PEK01", "Qian", "Declining")
    for day in ("2025-11-21", "2026-01-05", "2026-03-05", "2026-05-20"):
        await credit(m["declining"], D(day))
    await fly(m["declining"], D("2026-07-01"), km=2000)
    flown_not = await fly(m["declining"], D("2026-07-02"), km=4000)  # 4,400 miles, reversed: 0
    await undo(flown_not, D("2026-07-03"))
    # stable: a flight (800 km, B = 100 %) and a credit in each period: 1,600 miles
    m["stable"] = await member_at("PEK01", "Sun", "Stable")
    await fly(m["stable"], D("2026-02-01"), km=800, fare_class="B")
    await credit(m["stable"], D("2026-02-02"))
    await fly(m["stable"], D("2026-09-01"), km=800, fare_class="B")
    await credit(m["stable"], D("2026-09-02"))
    # dormant: only a flight before both periods (2025-11-20 is the day before previous)
    m["dormant"] = await member_at("PEK01", "Li", "Dormant")
    await fly(m["dormant"], D("2025-11-20"), km=5000)
    # new: enrolled 2026-08-01 (within 6 months), one J flight of 4,000 km = 12,000 miles
    m["new"] = await member_at("PEK01", "Zhou", "New", enrolled_on=D("2026-08-01"))
    await fly(m["new"], D("2026-09-15"), km=4000, fare_class="J")
    # TSN01 -----------------------------------------------------------------------
    m["tsn_flyer"] = await member_at("TSN01", "Wu", "Flyer")
    await fly(m["tsn_flyer"], D("2026-10-01"))
    m["tsn_idle"] = await member_at("TSN01", "Zheng", "Idle")
    return m


async def test_refresh_writes_stage_segment_and_day_office_by_office(db):
    m = await build_histories()
    calls: list[tuple[int, int]] = []
    summary = await refresh_segments(RULES, AS_OF, lambda done, total: calls.append((done, total)))

    # PEK01 has 5 members: HIGH is rank 1 (100 <= 5 x 20), MEDIUM rank 2 (200 <= 5 x 50)
    assert await snapshot(m["new"]) == (Stage.NEW, Segment.HIGH, AS_OF)  # 12,000 miles
    assert await snapshot(m["growing"]) == (Stage.GROWING, Segment.MEDIUM, AS_OF)  # 5,500
    assert await snapshot(m["declining"]) == (Stage.DECLINING, Segment.LOW, AS_OF)  # 2,200
    assert await snapshot(m["stable"]) == (Stage.STABLE, Segment.LOW, AS_OF)  # 1,600
    assert await snapshot(m["dormant"]) == (Stage.DORMANT, Segment.LOW, AS_OF)  # 0 in the window
    # TSN01 has 2 members, ranked on their own: rank 1 is MEDIUM (100 > 2 x 20, 100 <= 2 x 50)
    assert await snapshot(m["tsn_flyer"]) == (Stage.GROWING, Segment.MEDIUM, AS_OF)  # 1 recent vs 0 previous
    assert await snapshot(m["tsn_idle"]) == (Stage.DORMANT, Segment.LOW, AS_OF)

    offices = await Office.all().count()
    assert offices == 142
    assert calls[0] == (0, 142) and calls[-1] == (142, 142)
    assert [done for done, _ in calls] == list(range(143))  # one report per office
    assert summary.offices == 142 and summary.members == 7
    assert summary.stages == {Stage.NEW: 1, Stage.GROWING: 2, Stage.STABLE: 1, Stage.DECLINING: 1, Stage.DORMANT: 2}
    assert summary.segments == {Segment.HIGH: 1, Segment.MEDIUM: 2, Segment.LOW: 4}


async def test_a_later_run_moves_the_snapshot_and_a_rerun_changes_nothing(db):
    member = await member_at("PEK01", "Feng", "Later")
    other = await member_at("PEK01", "Chen", "Other")
    for day in ("2026-01-10", "2026-02-10", "2026-07-10", "2026-08-10"):
        await fly(member, D(day))
    await refresh_segments(RULES, AS_OF)
    assert await snapshot(member) == (Stage.STABLE, Segment.MEDIUM, AS_OF)  # 2 vs 2; rank 1 of 2
    assert await snapshot(other) == (Stage.DORMANT, Segment.LOW, AS_OF)
    await refresh_segments(RULES, AS_OF)
    assert await snapshot(member) == (Stage.STABLE, Segment.MEDIUM, AS_OF)

    # Six months on: recent (2026-11-21..2027-05-20) is empty, previous holds 2: DECLINING
    later = D("2027-05-20")
    await refresh_segments(RULES, later)
    assert await snapshot(member) == (Stage.DECLINING, Segment.MEDIUM, later)  # 2 flights still in 12 months
    # A year after the last flight: nothing in either period, no miles in the window
    last = D("2028-02-10")
    await refresh_segments(RULES, last)
    assert await snapshot(member) == (Stage.DORMANT, Segment.LOW, last)


async def test_members_of_an_office_without_ledger_and_a_member_before_enrolment_day(db):
    young = await member_at("PEK01", "Jiang", "Young", enrolled_on=D("2026-05-21"))
    await refresh_segments(RULES, AS_OF)
    assert await snapshot(young) == (Stage.NEW, Segment.LOW, AS_OF)  # enrolled after 2026-05-20
    await refresh_segments(RULES, D("2026-11-21"))
    assert await snapshot(young) == (Stage.DORMANT, Segment.LOW, D("2026-11-21"))  # six months have passed


async def test_the_cli_command_refreshes_with_progress_and_one_line_errors(db, tmp_path):
    from tests.api.loyalty_factories import loyalty_cli

    flyer = await member_at("PEK01", "Han", "Cli")
    await fly(flyer, D("2026-10-01"))
    idle = await member_at("PEK01", "Yang", "Cli")
    done = loyalty_cli(["care", "refresh", "--as-of", "2026-11-20"], tmp_path, db.database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == (
        "care refresh as of 2026-11-20: 2 members in 142 offices; 0 NEW, 1 GROWING, 0 STABLE, 0 DECLINING, "
        "1 DORMANT; 0 HIGH, 1 MEDIUM, 1 LOW"
    )
    assert "care refresh: [####################] 142/142 (100%)" in done.stderr
    assert await snapshot(flyer) == (Stage.GROWING, Segment.MEDIUM, AS_OF)
    assert await snapshot(idle) == (Stage.DORMANT, Segment.LOW, AS_OF)

    bad = loyalty_cli(["care", "refresh", "--as-of", "2026-02-30"], tmp_path, db.database_url)
    assert bad.returncode == 2 and "'2026-02-30' is not a date (YYYY-MM-DD)" in bad.stderr.splitlines()[-1]
    missing = loyalty_cli(["care", "refresh"], tmp_path, f"sqlite://{tmp_path / 'none.db'}")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("loyalty: ") and len(missing.stderr.strip().splitlines()) == 1
