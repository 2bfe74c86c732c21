"""The retention review job (RULES.md "Retention", "Dates"): loyalty.tiers.review_tiers.

Default rules: retain GOLD 70,000 miles or 36 segments, SILVER 35,000 or 23, PLATINUM
145,000 or 80; the window is the 12 calendar months ending with validUntil's month; a
renewed or lower elite tier runs to the end of the month 12 months after the old
validUntil's month (2028-02-29 -> 2029-02-28).
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from tortoise.expressions import F

from loyalty import calendar as cal
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import ReviewSummary, review_tiers
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")


async def member_with(tier: Tier, valid_until: date | None, since: date = D("2026-03-15"), name: str = "Wang") -> Member:
    member = await enroll(
        ADMIN, Enrolment(name, "Fang", Address(country="CN", province="Beijing", city="Beijing")), today=D("2026-01-10")
    )
    await Member.filter(id=member.id).update(tier=tier, tier_since=since, tier_valid_until=valid_until)
    return await Member.get(id=member.id)


async def flight(member: Member, day: date, miles: int, segments: int = 0) -> LedgerEntry:
    """A FLIGHT entry with its credit lot and the balance kept consistent."""
    entry = await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.FLIGHT, activity_date=day, qualifying_miles=miles,
        qualifying_segments=segments, redeemable_miles=miles, source="AIRLINE",
    )
    await CreditLot.create(
        entry_id=entry.id, member_id=member.id, expires_on=cal.credit_expiry(day, 36), remaining=miles
    )
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") + miles)
    return entry


async def events_of(member: Member) -> list[TierEvent]:
    return await TierEvent.filter(member_id=member.id).order_by("id")


async def test_retention_renews_for_twelve_months(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    # 70,000 miles inside the window 2027-03-01 .. 2028-02-29 (both edges count).
    await flight(gold, D("2027-03-01"), 40_000)
    await flight(gold, D("2028-02-29"), 30_000)
    await flight(gold, D("2027-02-28"), 50_000)  # the day before the window: does not count

    summary = await review_tiers(D("2028-03-01"), rules=RULES)

    assert summary == ReviewSummary(examined=1, retained=1, downgraded=0, events=1)
    member = await Member.get(id=gold.id)
    assert (member.tier, member.tier_valid_until) == (Tier.GOLD, D("2029-02-28"))
    assert member.tier_since == D("2026-03-15")  # held without a break since then
    (event,) = await events_of(gold)
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.GOLD, Tier.GOLD, TierChangeReason.RETENTION)
    assert event.valid_until == D("2029-02-28")
    assert event.effective_at == datetime(2028, 3, 1, tzinfo=timezone.utc)
    assert event.actor == "system:review"
    assert event.card_number == gold.card_number


async def test_retention_by_segments_alone(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    await flight(gold, D("2027-06-01"), 10_000, segments=3600)  # 36 segments

    await review_tiers(D("2028-03-01"), rules=RULES)

    (event,) = await events_of(gold)
    assert (event.to_tier, event.reason) == (Tier.GOLD, TierChangeReason.RETENTION)


async def test_one_mile_short_of_retention_is_a_downgrade(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    await flight(gold, D("2027-03-01"), 69_999, segments=3575)  # 35.75 segments

    summary = await review_tiers(D("2028-03-01"), rules=RULES)

    assert summary == ReviewSummary(examined=1, retained=0, downgraded=1, events=1)
    (event,) = await events_of(gold)
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.GOLD, Tier.SILVER, TierChangeReason.DOWNGRADE)
    assert event.valid_until == D("2029-02-28")
    member = await Member.get(id=gold.id)
    assert (member.tier, member.tier_since, member.tier_valid_until) == (Tier.SILVER, D("2028-03-01"), D("2029-02-28"))


async def test_downgrade_to_the_highest_tier_retained(db):
    platinum = await member_with(Tier.PLATINUM, D("2028-02-29"))
    await flight(platinum, D("2027-09-10"), 75_000)  # GOLD retains at 70,000; PLATINUM needs 145,000

    await review_tiers(D("2028-03-01"), rules=RULES)

    (event,) = await events_of(platinum)
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.PLATINUM, Tier.GOLD, TierChangeReason.DOWNGRADE)
    assert (event.since, event.valid_until) == (D("2028-03-01"), D("2029-02-28"))
    member = await Member.get(id=platinum.id)
    assert (member.tier, member.tier_valid_until) == (Tier.GOLD, D("2029-02-28"))


async def test_downgrade_to_standard_has_no_validity(db):
    silver = await member_with(Tier.SILVER, D("2028-02-29"))
    await flight(silver, D("2027-03-01"), 34_999, segments=2275)  # below 35,000 and 23 segments

    await review_tiers(D("2028-03-01"), rules=RULES)

    (event,) = await events_of(silver)
    assert (event.to_tier, event.reason, event.valid_until) == (Tier.STANDARD, TierChangeReason.DOWNGRADE, None)
    member = await Member.get(id=silver.id)
    assert (member.tier, member.tier_since, member.tier_valid_until) == (Tier.STANDARD, D("2028-03-01"), None)


async def test_reversed_entries_do_not_count(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    kept = await flight(gold, D("2027-05-01"), 40_000)
    reversed_entry = await flight(gold, D("2027-06-01"), 30_000)
    await LedgerEntry.create(
        member_id=gold.id, kind=LedgerEntryKind.REVERSAL, activity_date=reversed_entry.activity_date,
        qualifying_miles=-30_000, redeemable_miles=-30_000, source="ADMIN", reverses_id=reversed_entry.id,
    )
    await CreditLot.filter(entry_id=reversed_entry.id).update(remaining=0)
    await Member.filter(id=gold.id).update(redeemable_miles=kept.redeemable_miles)

    await review_tiers(D("2028-03-01"), rules=RULES)

    (event,) = await events_of(gold)
    assert (event.to_tier, event.reason) == (Tier.SILVER, TierChangeReason.DOWNGRADE)  # 40,000 >= 35,000


async def test_as_of_decides_only_validity_before_it(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))  # no miles at all: would be downgraded

    # A tier is held through its validUntil: as of 2028-02-29 nothing is due.
    assert await review_tiers(D("2028-02-29"), rules=RULES) == ReviewSummary(0, 0, 0, 0)
    assert await review_tiers(D("2027-12-01"), rules=RULES) == ReviewSummary(0, 0, 0, 0)
    member = await Member.get(id=gold.id)
    assert (member.tier, member.tier_valid_until) == (Tier.GOLD, D("2028-02-29"))
    assert await events_of(gold) == []

    # As of 2028-03-01 it is decided.
    assert await review_tiers(D("2028-03-01"), rules=RULES) == ReviewSummary(1, 0, 1, 1)
    member = await Member.get(id=gold.id)
    assert (member.tier, member.tier_valid_until) == (Tier.STANDARD, None)


async def test_a_tier_never_drops_before_valid_until(db):
    platinum = await member_with(Tier.PLATINUM, D("2028-02-29"))
    silver = await member_with(Tier.SILVER, D("2029-01-31"), name="Li")
    standard = await member_with(Tier.STANDARD, None, name="Zhao")

    summary = await review_tiers(D("2028-03-01"), rules=RULES)

    assert summary.examined == 1  # only the platinum member was due
    assert (await Member.get(id=silver.id)).tier is Tier.SILVER
    assert (await Member.get(id=standard.id)).tier is Tier.STANDARD
    assert await events_of(silver) == [] and await events_of(standard) == []
    assert (await Member.get(id=platinum.id)).tier is Tier.STANDARD


async def test_a_late_run_catches_up_step_by_step(db):
    platinum = await member_with(Tier.PLATINUM, D("2028-02-29"))
    await flight(platinum, D("2027-09-10"), 75_000)  # nothing in 2028-03 .. 2029-02

    # A year late: 2028-02-29 is decided (GOLD until 2029-02-28), then 2029-02-28 too.
    summary = await review_tiers(D("2029-03-01"), rules=RULES)

    assert summary == ReviewSummary(examined=1, retained=0, downgraded=1, events=2)
    first, second = await events_of(platinum)
    assert (first.from_tier, first.to_tier, first.reason, first.valid_until) == (
        Tier.PLATINUM, Tier.GOLD, TierChangeReason.DOWNGRADE, D("2029-02-28"),
    )
    assert first.effective_at == datetime(2028, 3, 1, tzinfo=timezone.utc)
    assert (second.from_tier, second.to_tier, second.reason, second.valid_until) == (
        Tier.GOLD, Tier.STANDARD, TierChangeReason.DOWNGRADE, None,
    )
    assert second.effective_at == datetime(2029, 3, 1, tzinfo=timezone.utc)
    member = await Member.get(id=platinum.id)
    assert (member.tier, member.tier_since, member.tier_valid_until) == (Tier.STANDARD, D("2029-03-01"), None)


async def test_a_late_run_stops_at_as_of(db):
    platinum = await member_with(Tier.PLATINUM, D("2028-02-29"))
    await flight(platinum, D("2027-09-10"), 75_000)

    # As of 2029-02-28 the new GOLD (valid until 2029-02-28) is not due yet.
    assert await review_tiers(D("2029-02-28"), rules=RULES) == ReviewSummary(1, 0, 1, 1)
    member = await Member.get(id=platinum.id)
    assert (member.tier, member.tier_valid_until) == (Tier.GOLD, D("2029-02-28"))


async def test_a_late_run_retains_then_downgrades(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    await flight(gold, D("2027-04-01"), 70_000)  # retains at 2028-02-29
    await flight(gold, D("2028-04-01"), 36_000)  # 2028-03 .. 2029-02: SILVER only

    summary = await review_tiers(D("2029-06-01"), rules=RULES)

    assert summary == ReviewSummary(examined=1, retained=0, downgraded=1, events=2)
    first, second = await events_of(gold)
    assert (first.reason, first.to_tier, first.valid_until) == (TierChangeReason.RETENTION, Tier.GOLD, D("2029-02-28"))
    assert (second.reason, second.to_tier, second.valid_until) == (TierChangeReason.DOWNGRADE, Tier.SILVER, D("2030-02-28"))


async def test_a_second_run_changes_nothing(db):
    gold = await member_with(Tier.GOLD, D("2028-02-29"))
    await flight(gold, D("2027-03-01"), 70_000)
    silver = await member_with(Tier.SILVER, D("2028-01-31"), name="Li")

    first = await review_tiers(D("2028-03-01"), rules=RULES)
    state = [(m.tier, m.tier_since, m.tier_valid_until) for m in await Member.all().order_by("id")]
    second = await review_tiers(D("2028-03-01"), rules=RULES)

    assert first == ReviewSummary(examined=2, retained=1, downgraded=1, events=2)
    assert second == ReviewSummary(examined=0, retained=0, downgraded=0, events=0)
    assert await TierEvent.all().count() == 2
    assert [(m.tier, m.tier_since, m.tier_valid_until) for m in await Member.all().order_by("id")] == state


async def test_batches_and_progress(db):
    due = [await member_with(Tier.SILVER, D("2027-12-31"), name=f"Due{i}") for i in range(5)]
    await member_with(Tier.SILVER, D("2028-12-31"), name="NotDue")
    calls: list[tuple[int, int]] = []

    summary = await review_tiers(D("2028-01-01"), rules=RULES, batch_size=2, actor="admin:ops", progress=lambda d, t: calls.append((d, t)))

    assert summary == ReviewSummary(examined=5, retained=0, downgraded=5, events=5)
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    events = await TierEvent.all().order_by("id")
    assert [e.member_id for e in events] == [m.id for m in due]
    assert {e.actor for e in events} == {"admin:ops"}
