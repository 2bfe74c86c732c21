"""Tier status and at-risk (RULES.md "Tiers", "atRiskOfDowngrade"): loyalty.tiers.tier_status
and loyalty.tiers.at_risk_member_ids.

Window: the 12 calendar months ending with today's month (today 2026-11-22: 2025-12-01
.. 2026-11-30). Upgrade GOLD 80,000 miles or 40 segments; retain GOLD 70,000 or 36,
SILVER 35,000 or 23. At risk: validUntil within 6 months of today and the totals of
the retention window (12 months ending with validUntil's month) below the retain
threshold. Segments are hundredths.
"""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.expressions import F

from loyalty import calendar as cal
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from loyalty.rules import load_rules
from loyalty.tiers import TierStatusView, at_risk_member_ids, tier_status
from members.access import Caller, Role, restrict_members, resolve_caller
from members.addresses import Address
from members.enums import Tier
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")
TODAY = D("2026-11-22")
BEIJING = Address(country="CN", province="Beijing", city="Beijing")
SHANGHAI = Address(country="CN", province="Shanghai", city="Shanghai")


async def member_with(
    tier: Tier, valid_until: date | None, name: str = "Wang", address: Address = BEIJING
) -> Member:
    member = await enroll(ADMIN, Enrolment(name, "Fang", address), today=D("2024-01-10"))
    await Member.filter(id=member.id).update(tier=tier, tier_since=D("2025-06-01"), tier_valid_until=valid_until)
    return await Member.get(id=member.id)


async def flight(member: Member, day: date, miles: int, segments: int = 0) -> LedgerEntry:
    entry = await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.FLIGHT, activity_date=day, qualifying_miles=miles,
        qualifying_segments=segments, redeemable_miles=miles, source="AIRLINE",
    )
    await CreditLot.create(entry_id=entry.id, member_id=member.id, expires_on=cal.credit_expiry(day, 36), remaining=miles)
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") + miles)
    return entry


async def at_risk_ids(today: date, caller: Caller = ADMIN) -> set[int]:
    return await at_risk_member_ids(restrict_members(Member.all(), caller), rules=RULES, today=today)


async def test_silver_with_50000_miles_and_25_segments(db):
    silver = await member_with(Tier.SILVER, D("2027-12-31"))
    await flight(silver, D("2025-12-01"), 20_000, segments=1000)  # first day of the window
    await flight(silver, D("2026-11-30"), 30_000, segments=1500)  # last day of the window
    await flight(silver, D("2025-11-30"), 99_000, segments=9000)  # the day before: not counted
    await LedgerEntry.create(  # partner miles are not qualifying
        member_id=silver.id, kind=LedgerEntryKind.PARTNER, activity_date=D("2026-05-01"), redeemable_miles=5_000, source="HOTEL",
    )

    view = await tier_status(silver, rules=RULES, today=TODAY)

    assert view == TierStatusView(
        tier=Tier.SILVER, since=D("2025-06-01"), valid_until=D("2027-12-31"),
        qualifying_miles=50_000, qualifying_segments=2500,
        next_tier=Tier.GOLD, miles_to_next_tier=30_000, segments_to_next_tier=1500,  # 80,000 or 40 segments
        at_risk_of_downgrade=False,  # validUntil is more than 6 months away
    )


async def test_standard_member_and_reversals(db):
    member = await member_with(Tier.STANDARD, None)
    entry = await flight(member, D("2026-10-01"), 45_000, segments=300)
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REVERSAL, activity_date=entry.activity_date,
        qualifying_miles=-45_000, qualifying_segments=-300, redeemable_miles=-45_000, source="ADMIN", reverses_id=entry.id,
    )
    await flight(member, D("2026-10-02"), 1_000, segments=100)

    view = await tier_status(member, rules=RULES, today=TODAY)

    assert (view.tier, view.valid_until, view.qualifying_miles, view.qualifying_segments) == (Tier.STANDARD, None, 1_000, 100)
    assert (view.next_tier, view.miles_to_next_tier, view.segments_to_next_tier) == (Tier.SILVER, 39_000, 2400)
    assert view.at_risk_of_downgrade is False


async def test_gaps_never_go_below_zero(db):
    gold = await member_with(Tier.GOLD, D("2027-12-31"))
    await flight(gold, D("2026-06-01"), 200_000, segments=1000)  # enough miles for PLATINUM, not segments

    view = await tier_status(gold, rules=RULES, today=TODAY)

    assert (view.next_tier, view.miles_to_next_tier, view.segments_to_next_tier) == (Tier.PLATINUM, 0, 8000)


async def test_platinum_has_no_next_tier(db):
    platinum = await member_with(Tier.PLATINUM, D("2027-12-31"))

    view = await tier_status(platinum, rules=RULES, today=TODAY)

    assert (view.next_tier, view.miles_to_next_tier, view.segments_to_next_tier) == (None, None, None)


async def test_at_risk_at_the_six_month_edge(db):
    # validUntil 2027-05-31: within 6 months of 2026-12-01 (horizon 2027-06-01), not of
    # 2026-11-30 (horizon 2027-05-30). No miles at all: below any threshold.
    gold = await member_with(Tier.GOLD, D("2027-05-31"))

    assert (await tier_status(gold, rules=RULES, today=D("2026-11-30"))).at_risk_of_downgrade is False
    assert await at_risk_ids(D("2026-11-30")) == set()
    assert (await tier_status(gold, rules=RULES, today=D("2026-12-01"))).at_risk_of_downgrade is True
    assert await at_risk_ids(D("2026-12-01")) == {gold.id}


@pytest.mark.parametrize(
    ("miles", "segments", "at_risk"),
    [(69_999, 3575, True), (70_000, 0, False), (0, 3600, False), (0, 0, True)],
)
async def test_at_risk_at_the_threshold_edge(db, miles, segments, at_risk):
    # GOLD until 2027-02-28: the retention window is 2026-03-01 .. 2027-02-28.
    gold = await member_with(Tier.GOLD, D("2027-02-28"))
    await flight(gold, D("2026-03-01"), miles, segments=segments)
    await flight(gold, D("2026-02-28"), 100_000, segments=5000)  # before the retention window

    assert (await tier_status(gold, rules=RULES, today=TODAY)).at_risk_of_downgrade is at_risk
    assert (await at_risk_ids(TODAY)) == ({gold.id} if at_risk else set())


async def test_at_risk_uses_each_tiers_own_threshold_and_window(db):
    # Three members with different validUntil months and tiers, one grouped query.
    silver_ok = await member_with(Tier.SILVER, D("2027-01-31"), name="A")
    await flight(silver_ok, D("2026-02-01"), 35_000)  # retention window 2026-02-01 .. 2027-01-31
    silver_short = await member_with(Tier.SILVER, D("2027-03-31"), name="B")
    await flight(silver_short, D("2026-02-01"), 35_000)  # outside 2026-04-01 .. 2027-03-31
    gold_short = await member_with(Tier.GOLD, D("2027-01-31"), name="C")
    await flight(gold_short, D("2026-02-01"), 69_000)
    platinum_ok = await member_with(Tier.PLATINUM, D("2027-04-30"), name="D")
    await flight(platinum_ok, D("2026-07-01"), 0, segments=8000)
    await member_with(Tier.STANDARD, None, name="E")  # never at risk
    far = await member_with(Tier.GOLD, D("2028-01-31"), name="F")  # validUntil too far away

    ids = await at_risk_ids(TODAY)

    assert ids == {silver_short.id, gold_short.id}
    for member in (silver_ok, silver_short, gold_short, platinum_ok, far):
        view = await tier_status(await Member.get(id=member.id), rules=RULES, today=TODAY)
        assert view.at_risk_of_downgrade is (member.id in ids)


async def test_past_due_tier_not_yet_reviewed_is_at_risk(db):
    gold = await member_with(Tier.GOLD, D("2026-10-31"))  # review has not run yet

    assert (await tier_status(gold, rules=RULES, today=TODAY)).at_risk_of_downgrade is True
    assert await at_risk_ids(TODAY) == {gold.id}


async def test_at_risk_ids_stay_within_the_given_queryset(db):
    beijing = await member_with(Tier.GOLD, D("2027-01-31"), name="Bei")
    shanghai = await member_with(Tier.GOLD, D("2027-01-31"), name="Hu", address=SHANGHAI)
    office = await resolve_caller(Role.OFFICE, "staff", "PVG01")

    assert await at_risk_ids(TODAY) == {beijing.id, shanghai.id}
    assert await at_risk_ids(TODAY, office) == {shanghai.id}
    only_beijing = Member.filter(id=beijing.id)
    assert await at_risk_member_ids(only_beijing, rules=RULES, today=TODAY) == {beijing.id}
