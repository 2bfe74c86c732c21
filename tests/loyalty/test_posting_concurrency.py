"""Concurrent postings: the database, not the application, decides the races.

Run on SQLite (one connection, transactions serialised by Tortoise) and on PostgreSQL
(a pool of connections: real concurrency, serialised by the member row lock and the
unique indexes).
"""

from __future__ import annotations

import asyncio
from datetime import date

from tortoise.functions import Coalesce, Sum

from loyalty.ledger import FlightDetails, flight_accrue, redeem, reverse
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.errors import DomainError
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
TODAY = date(2026, 3, 20)
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "ca-system")
FLIGHT = FlightDetails("CA", "1501", date(2026, 3, 15), "PEK", "SHA", 1000, "J")  # 3,000 miles


async def new_member() -> Member:
    return await enroll(
        ADMIN,
        Enrolment(family_name="Wang", given_name="Fang", address=Address(country="CN", province="Beijing", city="Beijing")),
        today=date(2025, 1, 2),
    )


async def assert_invariant(member: Member) -> None:
    row = await Member.get(id=member.id)
    ledger = await LedgerEntry.filter(member_id=member.id).annotate(s=Coalesce(Sum("redeemable_miles"), 0)).first().values("s")
    lots = await CreditLot.filter(member_id=member.id).annotate(s=Coalesce(Sum("remaining"), 0)).first().values("s")
    assert row.redeemable_miles == int(ledger["s"] or 0)
    assert int(lots["s"] or 0) == max(row.redeemable_miles, 0)


def codes(results) -> list[str]:
    return sorted(r.code for r in results if isinstance(r, DomainError))


async def test_50_identical_flight_accruals_post_once(db):
    member = await new_member()
    results = await asyncio.gather(
        *(flight_accrue(AIRLINE, member.card_number, FLIGHT, "SAME-REF", rules=RULES, today=TODAY) for _ in range(50)),
        return_exceptions=True,
    )
    unexpected = [r for r in results if isinstance(r, BaseException)]
    assert not unexpected, unexpected[:3]
    assert len(results) == 50
    assert len({r.entry.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await LedgerEntry.filter(member_id=member.id, kind=LedgerEntryKind.FLIGHT).count() == 1
    assert await LedgerEntry.filter(member_id=member.id).count() == 1
    assert (await Member.get(id=member.id)).redeemable_miles == 3000
    assert await CreditLot.filter(member_id=member.id).count() == 1
    await assert_invariant(member)


async def test_20_redemptions_of_300_at_3000_exactly_10_succeed(db):
    member = await new_member()
    await flight_accrue(AIRLINE, member.card_number, FLIGHT, "R1", rules=RULES, today=TODAY)  # 3,000
    results = await asyncio.gather(
        *(redeem(ADMIN, str(member.id), 300, "lounge", f"key-{n}", rules=RULES, today=TODAY) for n in range(20)),
        return_exceptions=True,
    )
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    assert len(succeeded) == 10
    assert codes(results) == ["INSUFFICIENT_MILES"] * 10
    assert all(r.member.redeemable_miles >= 0 for r in succeeded)
    assert sorted(r.member.redeemable_miles for r in succeeded) == list(range(0, 3000, 300))
    assert (await Member.get(id=member.id)).redeemable_miles == 0
    assert await LedgerEntry.filter(member_id=member.id, kind=LedgerEntryKind.REDEMPTION).count() == 10
    await assert_invariant(member)


async def test_the_same_redemption_key_at_once_redeems_once(db):
    member = await new_member()
    await flight_accrue(AIRLINE, member.card_number, FLIGHT, "R1", rules=RULES, today=TODAY)
    results = await asyncio.gather(
        *(redeem(ADMIN, str(member.id), 1000, "upgrade", "one-key", rules=RULES, today=TODAY) for _ in range(10)),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len({r.entry.id for r in results}) == 1
    assert (await Member.get(id=member.id)).redeemable_miles == 2000
    await assert_invariant(member)


async def test_concurrent_reversals_of_one_entry_reverse_it_once(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    flight = (await flight_accrue(AIRLINE, member.card_number, FLIGHT, "R1", rules=RULES, today=TODAY)).entry
    results = await asyncio.gather(
        *(reverse(ADMIN, str(flight.id), "no-show", f"rev-{n}", rules=RULES, today=TODAY) for n in range(10)),
        return_exceptions=True,
    )
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    assert len(succeeded) == 1
    assert codes(results) == ["ALREADY_REVERSED"] * 9
    assert await LedgerEntry.filter(member_id=member.id, kind=LedgerEntryKind.REVERSAL).count() == 2  # flight + bonus
    assert (await Member.get(id=member.id)).redeemable_miles == 0
    await assert_invariant(member)


async def test_concurrent_flights_upgrade_once_and_bonus_follows_the_tier(db):
    member = await new_member()
    long_haul = FlightDetails("CA", "981", date(2026, 3, 15), "PEK", "JFK", 5000, "B")  # 5,000 miles, 1 segment
    results = await asyncio.gather(
        *(flight_accrue(AIRLINE, member.card_number, long_haul, f"F{n}", rules=RULES, today=TODAY) for n in range(14)),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    # 14 x 5,000 = 70,000 (14 segments): whichever flight is 8th reaches 40,000 and upgrades
    # (earning STANDARD's 0 %); the 6 posted after it earn SILVER's 25 % (1,250 each)
    events = await TierEvent.filter(member_id=member.id)
    assert [(e.from_tier, e.to_tier, e.reason) for e in events] == [(Tier.STANDARD, Tier.SILVER, TierChangeReason.UPGRADE)]
    assert sum(r.tier_event is not None for r in results) == 1
    bonuses = await LedgerEntry.filter(member_id=member.id, kind=LedgerEntryKind.TIER_BONUS).values_list(
        "redeemable_miles", flat=True
    )
    assert sorted(bonuses) == [1250] * 6
    assert (await Member.get(id=member.id)).redeemable_miles == 77_500
    await assert_invariant(member)
