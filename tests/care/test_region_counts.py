"""The region statistics rollup (care.region_counts, kept by the tier_event and feedback
triggers of migration 0020) against counts made from the rows, after random histories,
direct SQL writes, updates and deletions; the local day of a tier event in zones with
and without summer time; overdue complaints at every edge of the current hour; and
officeStats reading the rollup by key instead of the events and complaints.

From the rows: a tier event with to_tier above (below) from_tier counts once under
UPGRADES (DOWNGRADES) on the local day of effective_at; an OPEN or IN_PROGRESS
complaint once under OPEN_COMPLAINTS (slot 0) and once under COMPLAINTS_DUE on the UTC
hour of respond_by (NO_DUE_HOUR without one); an ACTIVE member whose stored worklist
state is due (care_priority >= 0) once under CALLS_DUE (slot 0) at its office.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from tortoise import connections

from care.calls import care_calls_due, refresh_care_due
from care.models import Feedback, FeedbackChannel, FeedbackKind, FeedbackStatus, OfficeStatsCount, StatsMeasure
from care.region_counts import NO_DUE_HOUR, day_number, ensure_stats_counts
from care.stats import office_stats, region_stats
from loyalty.models import TierEvent
from loyalty.tiers import override_tier
from members.access import Caller, Role
from members.enums import MemberStatus, Tier
from members.models import Member, Office
from tests.care.history import ADMIN, RULES, member_at
from tests.statements import captured, plan, plan_problems

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc


def _counted(events, complaints, members, zone) -> Counter:
    expected: Counter = Counter()
    for office_id, status, care_priority in members:
        if status == MemberStatus.ACTIVE and care_priority is not None and care_priority >= 0:
            expected[(office_id, StatsMeasure.CALLS_DUE, 0)] += 1
    for office_id, from_tier, to_tier, effective_at in events:
        if to_tier != from_tier:
            measure = StatsMeasure.UPGRADES if to_tier > from_tier else StatsMeasure.DOWNGRADES
            expected[(office_id, measure, day_number(effective_at.astimezone(zone).date()))] += 1
    for office_id, kind, status, respond_by in complaints:
        if kind == FeedbackKind.COMPLAINT and status in (FeedbackStatus.OPEN, FeedbackStatus.IN_PROGRESS):
            expected[(office_id, StatsMeasure.OPEN_COMPLAINTS, 0)] += 1
            hour = int(respond_by.timestamp()) // 3600 if respond_by else NO_DUE_HOUR
            expected[(office_id, StatsMeasure.COMPLAINTS_DUE, hour)] += 1
    return expected


async def _check(zone=SHANGHAI) -> None:
    events = await TierEvent.all().values_list("office_id", "from_tier", "to_tier", "effective_at")
    complaints = await Feedback.all().values_list("office_id", "kind", "status", "respond_by")
    members = await Member.all().values_list("office_id", "status", "care_priority")
    kept = {
        (office_id, measure, slot): members
        for office_id, measure, slot, members in await OfficeStatsCount.filter(members__not=0).values_list(
            "office_id", "measure", "slot", "members"
        )
    }
    assert kept == dict(_counted(events, complaints, members, zone))


async def _complaint(member: Member, status: FeedbackStatus, respond_by: datetime | None,
                     kind: FeedbackKind = FeedbackKind.COMPLAINT) -> Feedback:
    return await Feedback.create(
        member_id=member.id, office_id=member.office_id, branch_id=member.branch_id, kind=kind,
        channel=FeedbackChannel.PHONE, subject="Seat", text="My seat was broken.", status=status,
        submitted_at=datetime(2026, 3, 1, tzinfo=UTC), respond_by=respond_by, updated_at=datetime(2026, 3, 1, tzinfo=UTC),
        submitted_by="office:desk@PEK01",
    )


async def test_the_rollup_follows_random_events_and_complaints(db):
    # The database may already keep Shanghai's days (an app started by an earlier test):
    # move it to another zone first, so the switch back is a rebuild.
    await ensure_stats_counts(NEW_YORK)
    assert await ensure_stats_counts(SHANGHAI) is True
    rng = random.Random(11)
    offices = ("PEK01", "TSN01", "PVG01")
    members = [await member_at(rng.choice(offices), "Roll", f"M{n}") for n in range(6)]
    office_ids = [o.id for o in await Office.filter(code__in=offices)]
    day = date(2026, 3, 1)
    items: list[Feedback] = []
    for step in range(40):
        member = rng.choice(members)
        choice = rng.random()
        if choice < 0.3:  # through the service: one tier event, effective now
            await override_tier(ADMIN, str(member.id), rng.choice(list(Tier)), None, "test", rules=RULES, today=day)
        elif choice < 0.45:  # a writer beside the services: an event moved in time or to another office
            event = await TierEvent.filter(member_id=member.id).order_by("-id").first()
            if event is not None:
                await TierEvent.filter(id=event.id).update(
                    effective_at=datetime(2026, 3, 1, rng.randint(0, 23), 59, 59, tzinfo=UTC) + timedelta(days=rng.randint(0, 40)),
                    office_id=rng.choice(office_ids), to_tier=rng.choice(list(Tier)),
                )
        elif choice < 0.55:  # the worklist state and the status, as the care refresh and the services write them
            await Member.filter(id=member.id).update(
                care_priority=rng.choice((None, 0, 11, 32)), status=rng.choice(list(MemberStatus)),
                office_id=rng.choice(office_ids),
            )
        elif choice < 0.7:
            respond_by = rng.choice((None, datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 5000))))
            items.append(await _complaint(member, rng.choice(list(FeedbackStatus)), respond_by,
                                          rng.choice((FeedbackKind.COMPLAINT, FeedbackKind.COMPLAINT, FeedbackKind.PRAISE))))
        elif choice < 0.9 and items:
            item = rng.choice(items)
            await Feedback.filter(id=item.id).update(
                status=rng.choice(list(FeedbackStatus)), office_id=rng.choice(office_ids),
                respond_by=rng.choice((None, datetime(2026, 3, 2, rng.randint(0, 23), tzinfo=UTC))),
            )
        elif items:
            gone = items.pop(rng.randrange(len(items)))
            await connections.get("default").execute_script(f"DELETE FROM feedback WHERE id = {gone.id}")
        await _check()
    await connections.get("default").execute_script(f"DELETE FROM tier_event WHERE member_id = {members[0].id}")
    await _check()
    # A member due a call deleted (SQL beside the services), one enrolled already due.
    gone = await member_at("PEK01", "Gone", "Due")
    await Member.filter(id=gone.id).update(care_priority=11, status=MemberStatus.ACTIVE)
    await _check()
    await connections.get("default").execute_script(f"DELETE FROM region_assignment WHERE member_id = {gone.id}")
    await connections.get("default").execute_script(f"DELETE FROM member WHERE id = {gone.id}")
    await _check()
    # Another time zone moves every event to its local day: rebuilt once.
    assert await ensure_stats_counts(NEW_YORK) is True
    await _check(NEW_YORK)
    assert await ensure_stats_counts(NEW_YORK) is False


async def _event_day(member: Member, at: datetime) -> int:
    """The slot the trigger gives an upgrade effective at ``at``."""
    await TierEvent.filter(member_id=member.id).update(effective_at=at, from_tier=Tier.STANDARD, to_tier=Tier.GOLD)
    rows = await OfficeStatsCount.filter(measure=StatsMeasure.UPGRADES, members__not=0).values_list("slot", "members")
    # The event's one member, moved out of its former day (the rows are the trigger's, never negative).
    assert [members for _, members in rows] == [1]
    return rows[0][0]


async def test_a_tier_event_counts_on_its_local_day(db):
    member = await member_at("PEK01")
    await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "test", rules=RULES, today=date(2026, 3, 1))
    await ensure_stats_counts(SHANGHAI)
    # Shanghai is UTC+8 all year: 16:00 UTC starts the next local day.
    assert await _event_day(member, datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC)) == day_number(date(2026, 3, 1))
    assert await _event_day(member, datetime(2026, 3, 1, 16, 0, 0, tzinfo=UTC)) == day_number(date(2026, 3, 2))
    assert await _event_day(member, datetime(2026, 7, 1, 16, 0, 0, tzinfo=UTC)) == day_number(date(2026, 7, 2))
    # New York: UTC-5 in winter, UTC-4 from 8 March 2026 to 1 November 2026.
    await ensure_stats_counts(NEW_YORK)
    assert await _event_day(member, datetime(2026, 3, 8, 4, 59, 59, tzinfo=UTC)) == day_number(date(2026, 3, 7))
    assert await _event_day(member, datetime(2026, 3, 8, 5, 0, 0, tzinfo=UTC)) == day_number(date(2026, 3, 8))
    assert await _event_day(member, datetime(2026, 3, 9, 3, 59, 59, tzinfo=UTC)) == day_number(date(2026, 3, 8))
    assert await _event_day(member, datetime(2026, 3, 9, 4, 0, 0, tzinfo=UTC)) == day_number(date(2026, 3, 9))
    assert await _event_day(member, datetime(2026, 11, 2, 3, 59, 59, tzinfo=UTC)) == day_number(date(2026, 11, 1))
    assert await _event_day(member, datetime(2026, 11, 2, 5, 0, 0, tzinfo=UTC)) == day_number(date(2026, 11, 2))


async def test_upgrades_of_the_last_30_local_days(db):
    """Events on the first and last instant of the 30 local days count; a second before
    or after does not."""
    await ensure_stats_counts(SHANGHAI)
    today = date(2026, 3, 31)
    first = datetime(2026, 3, 2, tzinfo=SHANGHAI)  # today - 29 days, 00:00 local
    end = datetime(2026, 4, 1, tzinfo=SHANGHAI)
    times = (first - timedelta(seconds=1), first, end - timedelta(seconds=1), end)
    member = await member_at("PEK01")
    for n, at in enumerate(times):
        await override_tier(ADMIN, str(member.id), Tier.SILVER if n % 2 == 0 else Tier.GOLD, None, "test", rules=RULES, today=today)
        latest = await TierEvent.filter(member_id=member.id).order_by("-id").first()
        await TierEvent.filter(id=latest.id).update(effective_at=at)
    event = await TierEvent.filter(member_id=member.id).order_by("id").values_list("from_tier", "to_tier")
    assert event == [(Tier.STANDARD, Tier.SILVER), (Tier.SILVER, Tier.GOLD), (Tier.GOLD, Tier.SILVER), (Tier.SILVER, Tier.GOLD)]
    stats = await region_stats(ADMIN, RULES, today, office_code="PEK01", timezone=SHANGHAI)
    # Counted: `first` (SILVER -> GOLD, up) and `end - 1 s` (GOLD -> SILVER, down).
    assert (stats.upgrades_last_30_days, stats.downgrades_last_30_days) == (1, 1)


async def test_overdue_complaints_at_every_edge_of_the_hour(db):
    await ensure_stats_counts(SHANGHAI)
    member = await member_at("PEK01")
    hour = datetime(2026, 3, 10, 9, tzinfo=UTC)
    dues = [hour - timedelta(days=3), hour - timedelta(seconds=1), hour, hour + timedelta(minutes=20),
            hour + timedelta(minutes=59, seconds=59), hour + timedelta(hours=1), hour + timedelta(hours=47), None]
    for due in dues:
        await _complaint(member, FeedbackStatus.OPEN, due)
    await _complaint(member, FeedbackStatus.RESOLVED, hour - timedelta(days=1))  # answered: not counted
    await _complaint(member, FeedbackStatus.OPEN, hour - timedelta(days=1), FeedbackKind.SUGGESTION)  # not a complaint
    for now in (hour - timedelta(microseconds=1), hour, hour + timedelta(minutes=20), hour + timedelta(minutes=20, seconds=1),
                hour + timedelta(minutes=59, seconds=59, microseconds=999_999), hour + timedelta(hours=1), hour + timedelta(days=3)):
        stats = await region_stats(ADMIN, RULES, now.date(), office_code="PEK01", now=now, timezone=SHANGHAI)
        overdue = sum(1 for due in dues if due is not None and due < now)
        assert (stats.open_complaints, stats.overdue_complaints) == (8, overdue), now
    # The numbers stated: at 09:20 exactly, the complaints due 3 days and 1 s before and at 09:00.
    at_0920 = await region_stats(ADMIN, RULES, hour.date(), office_code="PEK01", now=hour + timedelta(minutes=20))
    assert at_0920.overdue_complaints == 3


async def test_office_stats_read_the_rollup_by_key_and_no_event_or_complaint_row(db):
    await ensure_stats_counts(UTC)
    today = date(2026, 3, 10)
    now = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    for n, office in enumerate(("PEK01", "PEK01", "TSN01")):
        member = await member_at(office, "Stat", f"M{n}")
        await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "test", rules=RULES, today=today)
        await TierEvent.filter(member_id=member.id).update(effective_at=now - timedelta(days=n))
        await _complaint(member, FeedbackStatus.OPEN, now + timedelta(minutes=10 * (n - 1)))
    pek = await Office.get(code="PEK01")
    office_caller = Caller(Role.OFFICE, "t", "PEK01", office_id=pek.id, branch_id=pek.branch_id)
    with captured() as statements:
        rows = await office_stats(ADMIN, RULES, today, now=now)
        mine = await region_stats(office_caller, RULES, today, now=now)
    assert {row.office_code: (row.upgrades_last_30_days, row.open_complaints, row.overdue_complaints)
            for row in rows if row.open_complaints} == {"PEK01": (2, 2, 1), "TSN01": (1, 1, 0)}
    assert (mine.upgrades_last_30_days, mine.open_complaints, mine.overdue_complaints) == (2, 2, 1)
    assert statements.selects("tier_event") == []
    rollup = statements.selects("office_stats_count")
    assert len(rollup) == 6  # tier changes, open complaints, those due later: each statistic
    for statement in rollup:
        lines = await plan(statement)
        assert plan_problems(lines, "office_stats_count") == [], (statement.sql, lines)
    # Feedback: only the complaints falling due later in the current hour, by respond_by.
    feedback = statements.selects("feedback")
    assert len(feedback) == 2
    for statement in feedback:
        assert "respond_by" in statement.sql
        lines = await plan(statement)
        assert any("office_id=? AND respond_by>? AND respond_by<?" in line or "respond_by >=" in line for line in lines), lines


async def test_care_calls_due_counts_from_the_rollup(db):
    """totalCount of careCallsDue: the offices' CALLS_DUE rows, no COUNT over members."""
    await ensure_stats_counts(UTC)
    today = date(2026, 3, 10)
    due = []
    for n, office in enumerate(("PEK01", "PEK01", "PEK01", "TSN01")):
        member = await member_at(office, "Due", f"M{n}")
        await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "test", rules=RULES, today=today)
        due.append(member)
    await refresh_care_due(RULES, today)
    pek = await Office.get(code="PEK01")
    office_caller = Caller(Role.OFFICE, "t", "PEK01", office_id=pek.id, branch_id=pek.branch_id)
    with captured() as statements:
        page = await care_calls_due(office_caller, RULES, today, first=2)
        total = await page.total_count()
    everyone = await care_calls_due(ADMIN, RULES, today, first=2)
    assert (len(page.items), total, await everyone.total_count()) == (2, 3, 4)
    assert [s.sql for s in statements.selects("member") if "COUNT(" in s.sql.upper()] == []
    assert len(statements.selects("office_stats_count")) == 1
