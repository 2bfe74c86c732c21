"""flightAccrue: FLIGHT and TIER_BONUS entries, lots, upgrades, validation, externalRef."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from tortoise.functions import Coalesce, Sum

from loyalty.ledger import FlightDetails, flight_accrue
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.cards import card_number
from members.enums import MemberStatus, Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member
from members.services import Enrolment, enroll, set_status

RULES = load_rules()
TODAY = date(2026, 3, 20)
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "ca-system")


async def new_member(family: str = "Wang", given: str = "Fang", today: date = date(2025, 1, 2)) -> Member:
    return await enroll(
        ADMIN,
        Enrolment(family_name=family, given_name=given, address=Address(country="CN", province="Beijing", city="Beijing")),
        today=today,
    )


def flight(distance_km: int = 1000, fare_class: str = "J", day: date = date(2026, 3, 15), **changes) -> FlightDetails:
    base = FlightDetails(
        carrier="CA", flight_number="1501", date=day, origin="PEK", destination="SHA",
        distance_km=distance_km, fare_class=fare_class,
    )
    return replace(base, **changes)


async def accrue(member: Member, ref: str, f: FlightDetails, *, today: date = TODAY, caller: Caller = AIRLINE):
    return await flight_accrue(caller, member.card_number, f, ref, rules=RULES, today=today)


async def state(member: Member) -> tuple:
    """Everything a posting could write: entry, lot and event counts, balance and tier."""
    row = await Member.get(id=member.id)
    return (
        await LedgerEntry.filter(member_id=member.id).count(),
        await CreditLot.filter(member_id=member.id).count(),
        await TierEvent.filter(member_id=member.id).count(),
        row.redeemable_miles,
        row.tier,
    )


async def assert_invariant(member: Member) -> None:
    row = await Member.get(id=member.id)
    ledger = await LedgerEntry.filter(member_id=member.id).annotate(s=Coalesce(Sum("redeemable_miles"), 0)).first().values("s")
    lots = await CreditLot.filter(member_id=member.id).annotate(s=Coalesce(Sum("remaining"), 0)).first().values("s")
    assert row.redeemable_miles == int(ledger["s"] or 0)
    assert int(lots["s"] or 0) == max(row.redeemable_miles, 0)


# ---- earning --------------------------------------------------------------------------


async def test_1000_km_in_j_earns_3000_miles_and_3_segments(db):
    member = await new_member()
    result = await accrue(member, "R1", flight(1000, "J"))
    entry = result.entry
    assert entry.kind is LedgerEntryKind.FLIGHT
    assert (entry.qualifying_miles, entry.qualifying_segments, entry.redeemable_miles) == (3000, 300, 3000)
    assert entry.activity_date == date(2026, 3, 15)
    assert entry.source == "AIRLINE" and entry.external_ref == "R1"
    assert (entry.carrier, entry.flight_number, entry.origin, entry.destination, entry.distance_km, entry.fare_class) == (
        "CA", "1501", "PEK", "SHA", 1000, "J"
    )
    assert result.member.redeemable_miles == 3000
    assert result.member.tier is Tier.STANDARD
    assert result.tier_event is None and result.replayed is False
    # STANDARD earns a 0 % bonus: no TIER_BONUS entry at all
    assert await LedgerEntry.filter(member_id=member.id).count() == 1
    lot = await CreditLot.get(entry_id=entry.id)
    assert (lot.remaining, lot.expires_on) == (3000, date(2029, 3, 31))  # end of the 36th month after March 2026
    await assert_invariant(member)


async def test_silver_member_1000_km_y_earns_1100_plus_275_bonus(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    result = await accrue(member, "R1", flight(1000, "Y"))
    flight_entry = result.entry
    assert (flight_entry.qualifying_miles, flight_entry.qualifying_segments, flight_entry.redeemable_miles) == (1100, 110, 1100)
    bonus = await LedgerEntry.get(bonus_for_id=flight_entry.id)
    assert bonus.kind is LedgerEntryKind.TIER_BONUS
    assert (bonus.qualifying_miles, bonus.qualifying_segments, bonus.redeemable_miles) == (0, 0, 275)  # 25 % of 1,100
    assert bonus.activity_date == flight_entry.activity_date
    assert (await CreditLot.get(entry_id=bonus.id)).expires_on == date(2029, 3, 31)
    assert result.member.redeemable_miles == 1375
    assert result.tier_event is None
    await assert_invariant(member)


@pytest.mark.parametrize(("tier", "bonus"), [(Tier.GOLD, 330), (Tier.PLATINUM, 550)])
async def test_gold_and_platinum_bonus(db, tier, bonus):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=tier, tier_valid_until=date(2027, 12, 31))
    result = await accrue(member, "R1", flight(1000, "Y"))
    assert (await LedgerEntry.get(bonus_for_id=result.entry.id)).redeemable_miles == bonus  # 30 % / 50 % of 1,100
    assert result.member.redeemable_miles == 1100 + bonus


async def test_bonus_rounds_down(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    result = await accrue(member, "R1", flight(1001, "H"))  # 750 miles (750.75 down); 25 % = 187.5 -> 187
    assert result.entry.redeemable_miles == 750
    assert (await LedgerEntry.get(bonus_for_id=result.entry.id)).redeemable_miles == 187


async def test_short_flight_counts_500_km(db):
    member = await new_member()
    result = await accrue(member, "R1", flight(300, "Y"))
    assert (result.entry.qualifying_miles, result.entry.qualifying_segments) == (550, 110)


async def test_zero_percent_class_posts_an_empty_flight(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.GOLD, tier_valid_until=date(2027, 12, 31))
    result = await accrue(member, "R1", flight(2000, "I"))
    assert (result.entry.qualifying_miles, result.entry.qualifying_segments, result.entry.redeemable_miles) == (0, 0, 0)
    assert await LedgerEntry.filter(member_id=member.id).count() == 1  # no 0-mile bonus
    assert await CreditLot.filter(member_id=member.id).count() == 0  # nothing to expire
    assert result.member.redeemable_miles == 0


async def test_inputs_are_normalised(db):
    member = await new_member()
    result = await accrue(member, " R1 ", flight(carrier="ca", flight_number="981a", origin="pek", destination="jfk"))
    e = result.entry
    assert (e.external_ref, e.carrier, e.flight_number, e.origin, e.destination) == ("R1", "CA", "981A", "PEK", "JFK")


async def test_admin_posts_with_source_airline(db):
    member = await new_member()
    result = await accrue(member, "R1", flight(), caller=ADMIN)
    assert result.entry.source == "AIRLINE"


@pytest.mark.parametrize("role", [Role.MEMBER, Role.PARTNER, Role.OFFICE, Role.BRANCH])
async def test_other_roles_are_forbidden(db, role):
    member = await new_member()
    with pytest.raises(ForbiddenError):
        await accrue(member, "R1", flight(), caller=Caller(role, "x", scope="HOTEL1", member_id=member.id))
    assert await state(member) == (0, 0, 0, 0, Tier.STANDARD)


# ---- upgrades -------------------------------------------------------------------------


async def test_upgrade_to_silver_earns_standard_bonus_and_writes_one_event(db):
    member = await new_member()
    first = await accrue(member, "R1", flight(10_000, "J", date(2026, 1, 10)))  # 30,000
    assert first.tier_event is None and first.member.tier is Tier.STANDARD
    second = await accrue(member, "R2", flight(3_500, "J", date(2026, 3, 15)))  # 10,500 -> 40,500 in the window
    assert second.entry.qualifying_miles == 10_500
    # the upgrading flight earns the OLD tier's bonus: STANDARD's 0 % -> no TIER_BONUS
    assert not await LedgerEntry.filter(kind=LedgerEntryKind.TIER_BONUS).exists()
    event = second.tier_event
    assert event is not None
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.STANDARD, Tier.SILVER, TierChangeReason.UPGRADE)
    assert event.since == date(2026, 3, 15)
    assert event.valid_until == date(2028, 2, 29)  # last day of the 24th month, March 2026 being the first
    assert event.cause_id == second.entry.id
    assert event.card_number == member.card_number
    assert (second.member.tier, second.member.tier_since, second.member.tier_valid_until) == (
        Tier.SILVER, date(2026, 3, 15), date(2028, 2, 29)
    )
    assert await TierEvent.filter(member_id=member.id).count() == 1
    # the next flight earns SILVER's 25 %
    third = await accrue(member, "R3", flight(1000, "Y", date(2026, 3, 18)))
    assert (await LedgerEntry.get(bonus_for_id=third.entry.id)).redeemable_miles == 275
    assert third.tier_event is None
    await assert_invariant(member)


async def test_upgrade_by_segments(db):
    member = await new_member()
    # 8 J flights of 500 km: 8 x 1,500 = 12,000 miles, 24 segments; then a B flight: 25 segments
    for n in range(8):
        result = await accrue(member, f"J{n}", flight(500, "J", date(2026, 2, 1 + n)))
        assert result.tier_event is None
    result = await accrue(member, "B1", flight(500, "B", date(2026, 2, 20)))
    assert result.tier_event is not None and result.tier_event.to_tier is Tier.SILVER
    assert result.tier_event.valid_until == date(2028, 1, 31)


async def test_skipping_straight_to_gold(db):
    member = await new_member()
    await accrue(member, "R1", flight(10_000, "J", date(2026, 1, 10)))  # 30,000
    result = await accrue(member, "R2", flight(17_000, "J", date(2026, 3, 15)))  # 51,000 -> 81,000
    event = result.tier_event
    assert (event.from_tier, event.to_tier, event.valid_until) == (Tier.STANDARD, Tier.GOLD, date(2028, 2, 29))
    assert await TierEvent.filter(member_id=member.id).count() == 1
    assert result.member.tier is Tier.GOLD


async def test_meeting_the_current_tier_again_does_not_extend_validity(db):
    member = await new_member()
    await accrue(member, "R1", flight(14_000, "J", date(2026, 1, 10)))  # 42,000 -> SILVER until 2027-12-31
    result = await accrue(member, "R2", flight(1_000, "J", date(2026, 3, 15)))
    assert result.tier_event is None
    assert result.member.tier_valid_until == date(2027, 12, 31)
    assert await TierEvent.filter(member_id=member.id).count() == 1


async def test_only_the_window_counts(db):
    member = await new_member(today=date(2025, 1, 2))
    await accrue(member, "OLD", flight(10_000, "J", date(2025, 3, 10)), today=date(2025, 3, 20))  # 30,000 in March 2025
    # window of a March 2026 flight: 2025-04-01 .. 2026-03-31, so the old 30,000 do not count
    result = await accrue(member, "NEW", flight(3_500, "J", date(2026, 3, 15)))  # 10,500
    assert result.tier_event is None and result.member.tier is Tier.STANDARD


# ---- validation: nothing written ------------------------------------------------------


def _bad_check_digit(card: str) -> str:
    return card[:-1] + str((int(card[-1]) + 1) % 10)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"carrier": "C"}, ("input", "flight", "carrier")),
        ({"carrier": "C-A"}, ("input", "flight", "carrier")),
        ({"flight_number": ""}, ("input", "flight", "flightNumber")),
        ({"flight_number": "12345"}, ("input", "flight", "flightNumber")),
        ({"flight_number": "AB"}, ("input", "flight", "flightNumber")),
        ({"origin": "PE1"}, ("input", "flight", "origin")),
        ({"origin": "PEKK"}, ("input", "flight", "origin")),
        ({"destination": "SH"}, ("input", "flight", "destination")),
        ({"destination": "PEK"}, ("input", "flight", "destination")),  # same as origin
        ({"distance_km": 0}, ("input", "flight", "distanceKm")),
        ({"distance_km": -100}, ("input", "flight", "distanceKm")),
        ({"distance_km": 20_001}, ("input", "flight", "distanceKm")),
        ({"fare_class": "E"}, ("input", "flight", "fareClass")),
        ({"fare_class": "y"}, ("input", "flight", "fareClass")),
        ({"fare_class": "YY"}, ("input", "flight", "fareClass")),
        ({"date": date(2026, 3, 21)}, ("input", "flight", "date")),  # tomorrow
        ({"date": date(2025, 9, 19)}, ("input", "flight", "date")),  # earliest claim is 2025-09-20
    ],
)
async def test_invalid_flight_writes_nothing(db, changes, field):
    member = await new_member()
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await accrue(member, "R1", flight(**changes))
    assert (error.value.code, error.value.field) == ("INVALID", field)
    assert await state(member) == before
    assert not await LedgerEntry.filter(external_ref="R1").exists()


async def test_claims_window_edges_are_accepted(db):
    member = await new_member()
    assert (await accrue(member, "R1", flight(day=date(2025, 9, 20)))).entry.activity_date == date(2025, 9, 20)
    assert (await accrue(member, "R2", flight(day=TODAY))).entry.activity_date == TODAY


@pytest.mark.parametrize("ref", ["", "   ", "x" * 101])
async def test_invalid_external_ref(db, ref):
    member = await new_member()
    with pytest.raises(DomainError) as error:
        await accrue(member, ref, flight())
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "externalRef"))
    assert await state(member) == (0, 0, 0, 0, Tier.STANDARD)


async def test_external_ref_of_100_characters_is_fine(db):
    member = await new_member()
    assert (await accrue(member, "x" * 100, flight())).entry.external_ref == "x" * 100


@pytest.mark.parametrize("card", ["", "CA1234567", "XX123456789", "CA12345678A"])
async def test_malformed_card_is_invalid(db, card):
    with pytest.raises(DomainError) as error:
        await flight_accrue(AIRLINE, card, flight(), "R1", rules=RULES, today=TODAY)
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "cardNumber"))
    assert await LedgerEntry.all().count() == 0


async def test_bad_check_digit_is_invalid_not_not_found(db):
    member = await new_member()
    with pytest.raises(DomainError) as error:
        await flight_accrue(AIRLINE, _bad_check_digit(member.card_number), flight(), "R1", rules=RULES, today=TODAY)
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "cardNumber"))
    assert await state(member) == (0, 0, 0, 0, Tier.STANDARD)


async def test_unknown_card_is_not_found(db):
    member = await new_member()
    unknown = card_number(1) if member.card_number != card_number(1) else card_number(2)
    with pytest.raises(DomainError) as error:
        await flight_accrue(AIRLINE, unknown, flight(), "R1", rules=RULES, today=TODAY)
    assert (error.value.code, error.value.field) == ("NOT_FOUND", ("input", "cardNumber"))
    assert await LedgerEntry.all().count() == 0


@pytest.mark.parametrize("status", [MemberStatus.SUSPENDED, MemberStatus.CLOSED])
async def test_member_not_active_then_same_ref_after_reactivation(db, status):
    member = await new_member()
    await set_status(ADMIN, str(member.id), status, "test")
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await accrue(member, "R1", flight(1000, "J"))
    assert (error.value.code, error.value.field) == ("MEMBER_NOT_ACTIVE", ("input", "cardNumber"))
    assert await state(member) == before
    # the refused request did not use up its externalRef
    await set_status(ADMIN, str(member.id), MemberStatus.ACTIVE, "test")
    result = await accrue(member, "R1", flight(1000, "J"))
    assert result.replayed is False and result.entry.redeemable_miles == 3000
    assert result.member.redeemable_miles == 3000


# ---- externalRef idempotency ----------------------------------------------------------


async def test_replay_returns_the_original_and_writes_nothing(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    first = await accrue(member, "R1", flight(1000, "Y"))
    before = await state(member)
    again = await accrue(member, "R1", flight(1000, "Y"))
    assert again.replayed is True
    assert again.entry.id == first.entry.id
    assert again.member.redeemable_miles == 1375
    assert await state(member) == before
    # normalised input is the same content
    assert (await accrue(member, " R1", flight(1000, "Y", origin="pek"))).entry.id == first.entry.id


async def test_replay_of_an_upgrade_returns_its_tier_event(db):
    member = await new_member()
    await accrue(member, "R1", flight(10_000, "J", date(2026, 1, 10)))
    first = await accrue(member, "R2", flight(3_500, "J", date(2026, 3, 15)))
    again = await accrue(member, "R2", flight(3_500, "J", date(2026, 3, 15)))
    assert again.replayed and again.tier_event is not None
    assert again.tier_event.id == first.tier_event.id
    assert await TierEvent.filter(member_id=member.id).count() == 1


async def test_replay_after_the_claims_window_has_passed_and_after_suspension(db):
    member = await new_member()
    first = await accrue(member, "R1", flight(day=date(2026, 3, 15)))
    await set_status(ADMIN, str(member.id), MemberStatus.SUSPENDED, "test")
    again = await accrue(member, "R1", flight(day=date(2026, 3, 15)), today=date(2026, 10, 1))
    assert again.replayed and again.entry.id == first.entry.id


@pytest.mark.parametrize(
    "changes", [{"distance_km": 1001}, {"fare_class": "Y"}, {"date": date(2026, 3, 14)}, {"flight_number": "1502"}]
)
async def test_same_ref_other_content_is_a_conflict(db, changes):
    member = await new_member()
    await accrue(member, "R1", flight())
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await accrue(member, "R1", flight(**changes))
    assert (error.value.code, error.value.field) == ("IDEMPOTENCY_CONFLICT", ("input", "externalRef"))
    assert await state(member) == before


async def test_same_ref_for_another_member_is_a_conflict(db):
    one, other = await new_member(), await new_member("Li", "Lei")
    await accrue(one, "R1", flight())
    with pytest.raises(DomainError) as error:
        await accrue(other, "R1", flight())
    assert error.value.code == "IDEMPOTENCY_CONFLICT"
    assert await LedgerEntry.filter(member_id=other.id).count() == 0
