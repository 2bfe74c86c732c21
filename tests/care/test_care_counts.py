"""The VIP care rollup (care.counts, kept by the member triggers of migration 0006)
against a count made from the member rows, after random histories through the
services, office moves, status changes, direct SQL writes and deletions; and its
rebuild when the rules' retain thresholds change.

From the member rows: an ACTIVE member of tier >= SILVER counts once under VIPS, once
under LAST_CONTACT on its last contact day (0001-01-01 when never contacted), and under
SHORT_UNTIL on its validity end when it has one and is below both retain thresholds.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from datetime import date, timedelta

from tortoise import connections

from care.counts import NEVER, ensure_care_counts, thresholds
from care.models import CareMeasure, OfficeCareCount
from care.stats import office_stats, region_stats
from loyalty.rules import Rules
from members.enums import MemberStatus, Tier
from members.errors import DomainError
from members.access import Caller, Role
from members.models import Member, Office
from members.services import assign_region, set_status
from tests.care.history import ADMIN, RULES, member_at, random_step
from tests.statements import captured, plan, plan_problems

START = date(2026, 1, 10)


def _counted(rows, limits: dict[int, tuple[int, int]]) -> Counter:
    expected: Counter = Counter()
    for office_id, tier, status, last_contact, valid_until, miles, segments in rows:
        if status != MemberStatus.ACTIVE or tier < Tier.SILVER:
            continue
        expected[(office_id, int(tier), CareMeasure.VIPS, NEVER)] += 1
        expected[(office_id, int(tier), CareMeasure.LAST_CONTACT, last_contact or NEVER)] += 1
        retain_miles, retain_segments = limits[int(tier)]
        if valid_until is not None and miles < retain_miles and segments < retain_segments:
            expected[(office_id, int(tier), CareMeasure.SHORT_UNTIL, valid_until)] += 1
    return expected


async def _check(rules: Rules = RULES) -> None:
    rows = await Member.all().values_list(
        "office_id", "tier", "status", "care_last_contact_on", "tier_valid_until", "retention_miles", "retention_segments"
    )
    kept = {
        (office_id, tier, measure, on_date): members
        for office_id, tier, measure, on_date, members in await OfficeCareCount.filter(members__not=0).values_list(
            "office_id", "tier", "measure", "on_date", "members"
        )
    }
    assert kept == dict(_counted(rows, thresholds(rules)))


async def test_the_rollup_follows_random_histories_moves_status_and_sql_writes(db):
    await ensure_care_counts(RULES)
    rng = random.Random(7)
    offices = ("PEK01", "TSN01", "PVG01")
    members = [await member_at(rng.choice(offices), "Roll", f"M{n}") for n in range(8)]
    day, flights = START, []
    for step in range(40):
        choice = rng.random()
        member = rng.choice(members)
        if choice < 0.6:
            try:
                await random_step(rng, day, members, flights)
            except DomainError:
                pass  # refused (a suspended member): nothing changed, the check below still holds
        elif choice < 0.75:
            await assign_region(ADMIN, str(member.id), rng.choice(offices), "moved house")
        elif choice < 0.85:
            status = rng.choice((MemberStatus.ACTIVE, MemberStatus.SUSPENDED))
            await set_status(ADMIN, str(member.id), status, "test")
        else:
            # A writer beside the services (bulk SQL): the trigger sees it too.
            await Member.filter(id=member.id).update(
                tier=rng.choice(list(Tier)), retention_miles=rng.choice((0, 10_000, 200_000)),
                tier_valid_until=rng.choice((None, day + timedelta(days=rng.randint(0, 300)))),
                care_last_contact_on=rng.choice((None, day)),
            )
        await _check()
        day += timedelta(days=rng.choice((0, 1, 7, 31)))
    # Two new members made VIPs in one statement and deleted in another.
    fresh = [await member_at("PEK01", "Gone", f"M{n}") for n in range(2)]
    await Member.filter(id__in=[m.id for m in fresh]).update(tier=Tier.GOLD, tier_valid_until=day)
    await _check()
    await connections.get("default").execute_script(f"DELETE FROM region_assignment WHERE member_id IN ({fresh[0].id}, {fresh[1].id})")
    await connections.get("default").execute_script(f"DELETE FROM member WHERE id IN ({fresh[0].id}, {fresh[1].id})")
    await _check()


async def test_new_retain_thresholds_rebuild_the_rollup_once(db):
    await ensure_care_counts(RULES)
    member = await member_at("PEK01")
    await Member.filter(id=member.id).update(
        tier=Tier.GOLD, tier_valid_until=START, retention_miles=60_000, retention_segments=2_000
    )
    gold = RULES.tier("GOLD")
    assert (60_000, 2_000) < (gold.retain_miles, gold.retain_segments)  # short under the shipped rules
    await _check()
    assert await OfficeCareCount.filter(measure=CareMeasure.SHORT_UNTIL, members=1).count() == 1

    # Thresholds of 50,000 miles: 60,000 is enough, the member is no longer short.
    lower = replace(RULES, tiers=tuple(replace(t, retain_miles=50_000) if t is gold else t for t in RULES.tiers))
    assert await ensure_care_counts(lower) is True
    await _check(lower)
    assert await OfficeCareCount.filter(measure=CareMeasure.SHORT_UNTIL, members__not=0).count() == 0
    assert await ensure_care_counts(lower) is False
    assert await ensure_care_counts(RULES) is True
    await _check()


async def test_statistics_read_the_rollup_by_key_and_no_member_row(db):
    await ensure_care_counts(RULES)
    for n, office in enumerate(("PEK01", "PEK01", "TSN01")):
        member = await member_at(office, "Stat", f"M{n}")
        await Member.filter(id=member.id).update(tier=Tier.GOLD, tier_valid_until=START, care_last_contact_on=START)
    pek = await Office.get(code="PEK01")
    office_caller = Caller(Role.OFFICE, "t", "PEK01", office_id=pek.id, branch_id=pek.branch_id)
    with captured() as statements:
        rows = await office_stats(ADMIN, RULES, START)
        mine = await region_stats(office_caller, RULES, START)
    assert {row.office_code: row.vips for row in rows if row.vips} == {"PEK01": 2, "TSN01": 1}
    assert (mine.vips, mine.vips_contacted_within_interval, mine.at_risk_vips) == (2, 2, 2)
    assert statements.selects("member") == []
    rollup = statements.selects("office_care_count")
    assert len(rollup) == 6  # three measures, each statistic
    for statement in rollup:
        lines = await plan(statement)
        assert plan_problems(lines, "office_care_count") == [], (statement.sql, lines)
