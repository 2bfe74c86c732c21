"""One ledger: the demo's rows are what the services write for the same activity.

The demo (api.demo) replays each member's history on a loyalty.book.MemberBook and
writes its rows in bulk; the services (flightAccrue, partnerAccrue, milesRedeem, the
tier review, the expiry job) write theirs one posting at a time. Demo members whose
histories hold every kind of entry and tier change are posted here through the
services, activity by activity in date order, the daily jobs run on every day one is
due, and every row is compared with the rows the demo writes for them: entries
(descriptions, fingerprints, bonuses), lots (what is left, what expired), tier events
(reasons, days, notes, causes) and the member's tier and balance. A change to either
side that the other does not make fails here."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from api import demo
from loyalty.jobs import expire_miles
from loyalty.ledger import flight_accrue, partner_accrue, redeem
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import review_tiers
from members.access import Caller, Role
from members.enums import Tier
from members.errors import DomainError
from members.models import Member
from members.regions import rebuild_tier_counts
from tortoise import connections

RULES = load_rules()
TODAY = date(2026, 11, 22)
REASONS = {TierChangeReason.UPGRADE, TierChangeReason.RETENTION, TierChangeReason.DOWNGRADE}
KINDS = {LedgerEntryKind.FLIGHT, LedgerEntryKind.TIER_BONUS, LedgerEntryKind.PARTNER, LedgerEntryKind.REDEMPTION,
         LedgerEntryKind.EXPIRY}


def posted_at(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=timezone.utc)


def demo_rows(person: demo._Person) -> dict[str, list]:
    """What the demo writes for the member (api.demo._rows), ids made relative."""
    plan, book = demo._simulate(person, RULES, TODAY, posted_at)
    batch, events = demo._Batch(), []
    first = 1_000_000
    demo._rows(batch, events, person, plan, book, 1, first, set(), posted_at)
    (member,) = batch.members
    return {
        "member": [(member[18], member[19], member[20], member[21])],
        # (id, member, kind, activity_date, posted_at, ...): without the ids and the time
        "entries": [(*row[2:4], *row[5:-1], None if row[-1] is None else row[-1] - first)
                    for row in batch.entries],
        "lots": [(row[0] - first, *row[2:]) for row in batch.lots],
        # an upgrade's time is the posting's (the demo: noon of its day; the services: now)
        "events": [(*row[2:5], None if row[4] is TierChangeReason.UPGRADE else row[5], *row[6:8],
                    None if row[12] is None else row[12] - first, *row[13:]) for row in events],
    }


async def service_rows(member_id: int) -> dict[str, list]:
    member = await Member.get(id=member_id)
    entries = await LedgerEntry.filter(member_id=member_id).order_by("id").values_list(
        "id", "kind", "activity_date", "qualifying_miles", "qualifying_segments", "redeemable_miles", "source",
        "external_ref", "fingerprint", "description", "carrier", "flight_number", "origin", "destination",
        "distance_km", "fare_class", "bonus_for_id", "reverses_id")
    first = entries[0][0]
    assert all(row[-1] is None for row in entries)  # no reversals
    lots = await CreditLot.filter(member_id=member_id).order_by("entry_id").values_list(
        "entry_id", "expires_on", "remaining", "expired")
    events = await TierEvent.filter(member_id=member_id).order_by("id").values_list(
        "from_tier", "to_tier", "reason", "effective_at", "since", "valid_until", "cause_id", "actor", "note")
    return {
        "member": [(member.tier, member.tier_since, member.tier_valid_until, member.redeemable_miles)],
        "entries": [(*row[1:-2], None if row[-2] is None else row[-2] - first) for row in entries],
        "lots": [(row[0] - first, *row[1:]) for row in lots],
        "events": [(*row[:3], None if row[2] is TierChangeReason.UPGRADE else row[3], *row[4:6],
                    None if row[6] is None else row[6] - first, *row[7:]) for row in events],
    }


async def run_jobs(member_id: int, until: date) -> None:
    """The daily review and expiry on every day before `until` when one is due."""
    while True:
        member = await Member.get(id=member_id)
        due = [member.tier_valid_until] if member.tier is not Tier.STANDARD else []
        lot = await CreditLot.filter(member_id=member_id, remaining__gt=0).order_by("expires_on").first()
        due += [lot.expires_on] if lot is not None else []
        due = [day for day in due if day < until]
        if not due:
            return
        as_of = min(due) + timedelta(days=1)
        await review_tiers(as_of, rules=RULES)
        await expire_miles(as_of)


async def post_through_the_services(person: demo._Person, plan: demo._Plan, activities: list[tuple]) -> int:
    office = person.office
    member = await Member.create(
        card_number=person.card_number, family_name=person.family_name, given_name=person.given_name,
        address_country=person.address.country, address_city=person.address.city, office_id=office.id,
        branch_id=office.branch_id, tier_since=plan.enrolled,
        enrolled_at=posted_at(plan.enrolled) - timedelta(hours=2),
    )
    await rebuild_tier_counts(connections.get("default"))
    airline = Caller(Role.AIRLINE, "demo")
    assert airline.actor == demo.FLIGHT_ACTOR
    owner = Caller(Role.MEMBER, str(member.id), member_id=member.id)
    for n, activity in enumerate(activities):
        if activity[0] == "flight":
            _, flight, _, ref = activity
            await run_jobs(member.id, flight.date)
            await flight_accrue(airline, person.card_number, flight, ref, rules=RULES, today=flight.date)
        elif activity[0] == "partner":
            _, code, day, miles, text, ref = activity
            await run_jobs(member.id, day)
            await partner_accrue(Caller(Role.PARTNER, "desk", scope=code), person.card_number, person.family_name,
                                 miles, day, text, ref, rules=RULES, today=day)
        else:
            _, day, miles, text = activity
            await run_jobs(member.id, day)
            try:
                await redeem(owner, str(member.id), miles, text, f"redeem-{n}", rules=RULES, today=day)
            except DomainError as error:
                assert error.code == "INSUFFICIENT_MILES"
    await run_jobs(member.id, TODAY)
    return member.id


def varied_members(offices, weights) -> list[int]:
    """A few demo members whose histories together hold every entry kind and tier change
    (and an expiry with a lot partly redeemed before)."""
    chosen: list[int] = []
    kinds: set = set()
    reasons: set = set()
    for index in range(300):
        plan, book = demo._simulate(demo._person(index, offices, weights), RULES, TODAY, posted_at)
        new_kinds = {entry.kind for entry in book.entries} - kinds
        new_reasons = {event.change.reason for event in book.events} - reasons
        if new_kinds or new_reasons:
            chosen.append(index)
            kinds |= new_kinds
            reasons |= new_reasons
        if kinds >= KINDS and reasons >= REASONS:
            return chosen
    raise AssertionError(f"no demo member among 300 with {KINDS - kinds} {REASONS - reasons}")


async def test_the_demo_writes_what_the_services_write_for_the_same_activity(db):
    offices = await demo._offices()
    weights = demo._office_weights(offices)
    chosen = varied_members(offices, weights)
    assert len(chosen) <= 6
    for index in chosen:
        # A person's random stream is used up by its history: a fresh one for each use.
        plan, _, activities = demo._history(demo._person(index, offices, weights), RULES, TODAY)
        member_id = await post_through_the_services(demo._person(index, offices, weights), plan, activities)
        expected = demo_rows(demo._person(index, offices, weights))
        written = await service_rows(member_id)
        for table in ("member", "entries", "lots", "events"):
            assert written[table] == expected[table], (index, table)
