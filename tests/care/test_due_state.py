"""The worklist state kept on the member row (care.calls, loyalty.changes) against a
recomputation from scratch, after random sequences of flights, reversals, tier
overrides, tier reviews, care calls and days passing.

From scratch: the retention totals summed from the ledger (loyalty.totals), at-risk
from the ledger (loyalty.tiers.at_risk_member_ids), "downgraded" from the tier event
log, the reasons from care.calls.due_reasons. Checked after every step: careCallsDue
(paged by 3) lists exactly the due members in order with the right total, whether or
not the daily job has run that day; after the job, every stored column equals the
recomputation.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from tortoise.functions import Max

from care.calls import CareFacts, _recheck_on, _sort_key, care_calls_due, due_reasons, due_state, refresh_care_due
from loyalty import calendar as cal
from loyalty.models import TierEvent
from loyalty.tiers import at_risk_member_ids, override_tier
from loyalty.totals import window_totals
from members.enums import MemberStatus, Tier
from members.models import Member
from tests.care.history import ADMIN, RULES, member_at, random_step

START = date(2026, 1, 10)
MEMBERS = 6


async def _scratch(today: date) -> tuple[list[tuple[int, list[str]]], dict[int, tuple]]:
    """(the due list in order as (member id, reasons), every member's state and retention
    totals) recomputed from the ledger and the event log."""
    at_risk = await at_risk_member_ids(Member.all(), rules=RULES, today=today)
    latest = await TierEvent.all().annotate(last=Max("id")).group_by("member_id").values_list("last", flat=True)
    events = await TierEvent.filter(id__in=list(latest)).values_list("member_id", "from_tier", "to_tier")
    down = {member_id for member_id, from_tier, to_tier in events if to_tier < from_tier}
    due, states = [], {}
    for row in await Member.all().order_by("id"):
        facts = CareFacts(row.id, row.tier, row.tier_since, row.tier_valid_until, row.care_last_contact_on,
                          row.care_follow_up_on, downgraded=row.id in down, recorded_on=row.tier_recorded_on,
                          lifecycle_stage=row.lifecycle_stage, lifecycle_since=row.lifecycle_since)
        totals = (0, 0)
        if row.tier_valid_until is not None:
            totals = await window_totals(row.id, *cal.retention_window(row.tier_valid_until, RULES.window_months))
        state = due_state(facts, RULES, today, row.id in at_risk)
        states[row.id] = (state.priority, state.due_since, _recheck_on(facts, RULES, today), totals)
        reasons = due_reasons(facts, RULES, today, row.id in at_risk)
        if reasons and row.status is MemberStatus.ACTIVE:
            due.append((_sort_key(facts, reasons), row.id, [r.reason.value for r in reasons]))
    due.sort()
    return [(member_id, reasons) for _, member_id, reasons in due], states


async def _worklist(today: date) -> tuple[list[tuple[int, list[str]]], set[int]]:
    """careCallsDue as an admin reads it, page by page (3 a page); and the totals seen."""
    seen, totals, after = [], set(), None
    while True:
        page = await care_calls_due(ADMIN, RULES, today, first=3, after=after)
        totals.add(await page.total_count())
        seen += [(item.member.id, [r.reason.value for r in item.reasons]) for item in page.items]
        if not page.has_next_page:
            return seen, totals
        after = page.end_cursor


async def _check(today: date, *, job: bool) -> None:
    expected, states = await _scratch(today)
    listed, totals = await _worklist(today)
    assert listed == expected
    assert totals == {len(expected)}
    if job:
        await refresh_care_due(RULES, today)
        stored = {
            row["id"]: (row["care_priority"], row["care_due_since"], row["care_recheck_on"],
                        (row["retention_miles"], row["retention_segments"]))
            for row in await Member.all().values(
                "id", "care_priority", "care_due_since", "care_recheck_on", "retention_miles", "retention_segments")
        }
        assert stored == states
        assert await _worklist(today) == (listed, totals)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_kept_state_equals_a_recomputation_after_random_histories(db, seed):
    rng = random.Random(seed)
    members = [await member_at(rng.choice(("PEK01", "TSN01", "PVG01")), "Prop", f"M{n}") for n in range(MEMBERS)]
    for member in members[:4]:
        await override_tier(ADMIN, str(member.id), rng.choice((Tier.SILVER, Tier.GOLD, Tier.PLATINUM)),
                            START + timedelta(days=rng.randint(20, 300)), "start", rules=RULES, today=START)
    day, flights = START, []
    for _ in range(14):
        for _ in range(rng.randint(1, 4)):
            await random_step(rng, day, members, flights)
        await _check(day, job=rng.random() < 0.5)
        day += timedelta(days=rng.choice((1, 5, 29, 31, 61)))
    await _check(day, job=True)
