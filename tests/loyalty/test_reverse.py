"""ledgerEntryReverse: REVERSAL entries, lots and negative balances, tier re-evaluation."""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.functions import Coalesce, Sum

from loyalty.ledger import FlightDetails, flight_accrue, partner_accrue, redeem, reverse
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rules import load_rules
from loyalty.totals import window_totals
from members.access import Caller, Role
from members.addresses import Address
from members.enums import MemberStatus, Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member
from members.services import Enrolment, enroll, set_status

RULES = load_rules()
TODAY = date(2026, 3, 20)
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "ca-system")


async def new_member(family: str = "Wang", given: str = "Fang") -> Member:
    return await enroll(
        ADMIN,
        Enrolment(family_name=family, given_name=given, address=Address(country="CN", province="Beijing", city="Beijing")),
        today=date(2025, 1, 2),
    )


async def fly(member: Member, ref: str, km: int, fare_class: str, day: date):
    details = FlightDetails("CA", "1501", day, "PEK", "SHA", km, fare_class)
    return await flight_accrue(AIRLINE, member.card_number, details, ref, rules=RULES, today=TODAY)


async def credit(member: Member, ref: str, miles: int, day: date) -> LedgerEntry:
    result = await partner_accrue(
        ADMIN, member.card_number, member.family_name, miles, day, None, ref, rules=RULES, today=TODAY
    )
    return result.entry


async def spend(member: Member, miles: int, key: str):
    return await redeem(ADMIN, str(member.id), miles, "award ticket", key, rules=RULES, today=TODAY)


async def undo(entry: LedgerEntry | int | str, key: str, *, caller: Caller = ADMIN, reason: str = "flight not flown"):
    entry_id = entry.id if isinstance(entry, LedgerEntry) else entry
    return await reverse(caller, str(entry_id), reason, key, rules=RULES, today=TODAY)


async def lot_of(entry: LedgerEntry) -> int:
    return (await CreditLot.get(entry_id=entry.id)).remaining


async def lots_sum(member: Member) -> int:
    row = await CreditLot.filter(member_id=member.id).annotate(s=Coalesce(Sum("remaining"), 0)).first().values("s")
    return int(row["s"] or 0)


async def state(member: Member) -> tuple:
    row = await Member.get(id=member.id)
    return (
        await LedgerEntry.filter(member_id=member.id).count(),
        await lots_sum(member),
        await TierEvent.filter(member_id=member.id).count(),
        row.redeemable_miles,
        row.tier,
    )


async def assert_invariant(member: Member) -> None:
    row = await Member.get(id=member.id)
    ledger = await LedgerEntry.filter(member_id=member.id).annotate(s=Coalesce(Sum("redeemable_miles"), 0)).first().values("s")
    assert row.redeemable_miles == int(ledger["s"] or 0)
    assert await lots_sum(member) == max(row.redeemable_miles, 0)


# ---- entries and miles ----------------------------------------------------------------


async def test_reversing_a_flight_reverses_its_bonus_too(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    flight = (await fly(member, "R1", 1000, "Y", date(2026, 3, 15))).entry  # 1,100 + TIER_BONUS 275
    bonus = await LedgerEntry.get(bonus_for_id=flight.id)

    result = await undo(flight, "k1", caller=AIRLINE, reason="no-show")
    reversal = result.entry
    assert reversal.kind is LedgerEntryKind.REVERSAL and reversal.reverses_id == flight.id
    assert (reversal.qualifying_miles, reversal.qualifying_segments, reversal.redeemable_miles) == (-1100, -110, -1100)
    assert reversal.activity_date == date(2026, 3, 15)  # the original's date, not today
    assert "no-show" in reversal.description
    assert reversal.source == "AIRLINE"
    bonus_reversal = await LedgerEntry.get(reverses_id=bonus.id)
    assert bonus_reversal.kind is LedgerEntryKind.REVERSAL
    assert (bonus_reversal.qualifying_miles, bonus_reversal.redeemable_miles) == (0, -275)
    assert bonus_reversal.activity_date == date(2026, 3, 15)
    assert result.member.redeemable_miles == 0
    assert (await lot_of(flight), await lot_of(bonus)) == (0, 0)
    assert result.tier_event is None and result.replayed is False
    assert result.member.tier is Tier.SILVER  # not from an upgrade: nothing to re-evaluate
    # window sums cancel the reversed flight without any filtering
    assert await window_totals(member.id, date(2025, 4, 1), date(2026, 3, 31)) == (0, 0)
    assert await LedgerEntry.filter(member_id=member.id).count() == 4
    await assert_invariant(member)


async def test_reversal_of_a_partly_spent_credit_goes_negative_and_a_later_credit_pays_the_debt(db):
    member = await new_member()
    flight = (await fly(member, "R1", 1000, "J", date(2026, 3, 15))).entry  # 3,000
    await spend(member, 2500, "r1")
    assert await lot_of(flight) == 500

    result = await undo(flight, "k1")
    assert result.entry.redeemable_miles == -3000
    assert result.member.redeemable_miles == -2500  # 3,000 - 2,500 - 3,000
    assert await lot_of(flight) == 0
    assert await lots_sum(member) == 0
    await assert_invariant(member)

    # redemptions wait until the balance is positive again
    with pytest.raises(DomainError) as error:
        await spend(member, 1, "r2")
    assert error.value.code == "INSUFFICIENT_MILES"

    later = await credit(member, "P1", 4000, date(2026, 3, 18))
    assert (await Member.get(id=member.id)).redeemable_miles == 1500
    assert await lot_of(later) == 1500  # 2,500 of the 4,000 paid the debt
    await assert_invariant(member)
    assert (await spend(member, 1500, "r3")).member.redeemable_miles == 0
    await assert_invariant(member)


async def test_reversed_credit_takes_its_own_lot_first_then_fifo(db):
    member = await new_member()
    p1 = await credit(member, "P1", 1000, date(2025, 10, 5))  # expires 2028-10-31
    flight = (await fly(member, "R1", 1000, "J", date(2026, 1, 10))).entry  # 3,000, expires 2029-01-31
    p2 = await credit(member, "P2", 2000, date(2026, 3, 1))  # expires 2029-03-31
    await spend(member, 3500, "r1")  # FIFO: P1 1,000, then 2,500 of the flight
    assert (await lot_of(p1), await lot_of(flight), await lot_of(p2)) == (0, 500, 2000)

    result = await undo(flight, "k1")
    # own lot 500, then 2,000 FIFO from P2, and the last 500 are the negative balance
    assert (await lot_of(p1), await lot_of(flight), await lot_of(p2)) == (0, 0, 0)
    assert result.member.redeemable_miles == -500  # 6,000 - 3,500 - 3,000
    await assert_invariant(member)


async def test_unspent_reversal_leaves_other_lots_alone(db):
    member = await new_member()
    p1 = await credit(member, "P1", 1000, date(2025, 10, 5))
    flight = (await fly(member, "R1", 1000, "J", date(2026, 1, 10))).entry
    await spend(member, 500, "r1")  # from P1 (earliest expiry)
    await undo(flight, "k1")
    assert (await lot_of(p1), await lot_of(flight)) == (500, 0)
    assert (await Member.get(id=member.id)).redeemable_miles == 500
    await assert_invariant(member)


async def test_reversing_a_redemption_gives_the_miles_back_as_a_new_credit(db):
    member = await new_member()
    await credit(member, "P1", 3000, date(2026, 3, 1))
    redemption = (await spend(member, 1200, "r1")).entry
    result = await undo(redemption, "k1", reason="ticket cancelled")
    reversal = result.entry
    assert (reversal.kind, reversal.redeemable_miles, reversal.reverses_id) == (LedgerEntryKind.REVERSAL, 1200, redemption.id)
    assert reversal.activity_date == TODAY  # the redemption's date
    lot = await CreditLot.get(entry_id=reversal.id)
    assert (lot.remaining, lot.expires_on) == (1200, date(2029, 3, 31))  # as a credit of 2026-03-20
    assert result.member.redeemable_miles == 3000
    await assert_invariant(member)


async def test_reversing_a_redemption_while_negative_pays_the_debt_first(db):
    member = await new_member()
    flight = (await fly(member, "R1", 1000, "J", date(2026, 3, 15))).entry  # 3,000
    redemption = (await spend(member, 2500, "r1")).entry
    await undo(flight, "k1")  # -2,500
    result = await undo(redemption, "k2")  # +2,500
    assert result.member.redeemable_miles == 0
    assert await lot_of(result.entry) == 0
    await assert_invariant(member)


async def test_admin_reverses_a_partner_entry_of_a_suspended_member(db):
    member = await new_member()
    entry = await credit(member, "P1", 2500, date(2026, 3, 1))
    await set_status(ADMIN, str(member.id), MemberStatus.SUSPENDED, "fraud check")
    result = await undo(entry, "k1", reason="posted twice")
    assert (result.entry.source, result.entry.redeemable_miles) == ("ADMIN", -2500)
    assert result.member.redeemable_miles == 0 and result.member.status is MemberStatus.SUSPENDED
    await assert_invariant(member)


# ---- tier re-evaluation ---------------------------------------------------------------


async def test_reversal_that_undoes_an_upgrade(db):
    member = await new_member()
    await fly(member, "R1", 10_000, "J", date(2026, 1, 10))  # 30,000
    upgrading = await fly(member, "R2", 3_500, "J", date(2026, 3, 15))  # 10,500 -> 40,500: SILVER
    assert upgrading.member.tier is Tier.SILVER

    result = await undo(upgrading.entry, "k1", caller=AIRLINE)
    event = result.tier_event
    assert event is not None
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.SILVER, Tier.STANDARD, TierChangeReason.REVERSAL)
    assert event.valid_until is None
    assert event.since == member.enrolled_at.date()  # STANDARD held since enrolment
    assert event.cause_id == result.entry.id
    assert (result.member.tier, result.member.tier_valid_until) == (Tier.STANDARD, None)
    assert await TierEvent.filter(member_id=member.id).order_by("id").values_list("reason", flat=True) == [
        TierChangeReason.UPGRADE, TierChangeReason.REVERSAL
    ]


async def test_upgrade_that_still_holds_is_kept(db):
    member = await new_member()
    small = (await fly(member, "R0", 1_000, "B", date(2026, 1, 5))).entry  # 1,000
    await fly(member, "R1", 10_000, "J", date(2026, 1, 10))  # 30,000
    await fly(member, "R2", 3_500, "J", date(2026, 3, 15))  # 10,500 -> 41,500: SILVER
    result = await undo(small, "k1")  # 40,500 still meets 40,000
    assert result.tier_event is None
    assert result.member.tier is Tier.SILVER and result.member.tier_valid_until == date(2028, 2, 29)
    assert await TierEvent.filter(member_id=member.id).count() == 1


async def test_entry_outside_the_upgrade_window_does_not_touch_the_tier(db):
    member = await new_member()
    await fly(member, "R1", 14_000, "J", date(2026, 1, 10))  # 42,000: SILVER, window 2025-02 .. 2026-01
    later = (await fly(member, "R2", 1_000, "Y", date(2026, 3, 15))).entry  # after the upgrade's window
    result = await undo(later, "k1")
    assert result.tier_event is None and result.member.tier is Tier.SILVER


async def test_gold_back_to_silver_restores_the_silver_validity(db):
    member = await new_member()
    silver = await fly(member, "R1", 14_000, "J", date(2026, 1, 10))  # 42,000: SILVER until 2027-12-31
    gold = await fly(member, "R2", 13_000, "J", date(2026, 3, 15))  # 39,000 (+ 9,750 bonus) -> 81,000: GOLD
    assert silver.tier_event.valid_until == date(2027, 12, 31)
    assert (gold.member.tier, gold.member.tier_valid_until) == (Tier.GOLD, date(2028, 2, 29))

    result = await undo(gold.entry, "k1")
    event = result.tier_event
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.GOLD, Tier.SILVER, TierChangeReason.REVERSAL)
    assert (event.since, event.valid_until) == (date(2026, 1, 10), date(2027, 12, 31))
    assert (result.member.tier, result.member.tier_since, result.member.tier_valid_until) == (
        Tier.SILVER, date(2026, 1, 10), date(2027, 12, 31)
    )
    assert result.member.redeemable_miles == 42_000
    await assert_invariant(member)


async def test_skipped_upgrade_falls_to_the_tier_the_totals_still_earn(db):
    member = await new_member()
    first = (await fly(member, "R1", 10_000, "J", date(2026, 1, 10))).entry  # 30,000
    gold = await fly(member, "R2", 17_000, "J", date(2026, 3, 15))  # 51,000 -> 81,000: STANDARD -> GOLD
    assert gold.member.tier is Tier.GOLD
    result = await undo(first, "k1")  # 51,000 left: SILVER, as if upgraded on 2026-03-15
    event = result.tier_event
    assert (event.from_tier, event.to_tier) == (Tier.GOLD, Tier.SILVER)
    assert (event.since, event.valid_until) == (date(2026, 3, 15), date(2028, 2, 29))


async def test_reversal_walks_back_through_upgrades_fed_by_the_same_entry(db):
    member = await new_member()
    big = await fly(member, "R1", 20_000, "J", date(2026, 1, 5))  # 60,000: STANDARD -> SILVER
    gold = await fly(member, "R2", 7_000, "J", date(2026, 3, 15))  # 21,000 (+5,250) -> 81,000: SILVER -> GOLD
    assert (big.member.tier, gold.member.tier) == (Tier.SILVER, Tier.GOLD)
    result = await undo(big.entry, "k1")
    # without the 60,000 only 21,000 are left: the SILVER it fed is void too
    event = result.tier_event
    assert (event.from_tier, event.to_tier, event.valid_until) == (Tier.GOLD, Tier.STANDARD, None)
    assert result.member.tier is Tier.STANDARD
    assert await TierEvent.filter(member_id=member.id, reason=TierChangeReason.REVERSAL).count() == 1


async def test_a_second_reversal_finds_the_upgrade_behind_an_earlier_reversal(db):
    member = await new_member()
    await fly(member, "R1", 10_000, "J", date(2026, 1, 10))  # 30,000
    silver = (await fly(member, "R2", 3_500, "J", date(2026, 1, 20))).entry  # 10,500 -> 40,500: SILVER
    gold = (await fly(member, "R3", 14_000, "J", date(2026, 3, 15))).entry  # 42,000 (+10,500) -> 82,500: GOLD
    first = await undo(gold, "k1")  # 40,500: back to SILVER since 2026-01-20, until 2027-12-31
    assert (first.tier_event.to_tier, first.tier_event.since, first.tier_event.valid_until) == (
        Tier.SILVER, date(2026, 1, 20), date(2027, 12, 31)
    )
    second = await undo(silver, "k2")  # 30,000: the SILVER upgrade it fed does not hold either
    assert (second.tier_event.from_tier, second.tier_event.to_tier) == (Tier.SILVER, Tier.STANDARD)
    assert second.member.tier is Tier.STANDARD and second.member.tier_valid_until is None


async def test_a_second_reversal_after_a_replayed_upgrade(db):
    member = await new_member()
    first = (await fly(member, "R1", 10_000, "J", date(2026, 1, 10))).entry  # 30,000
    gold = (await fly(member, "R2", 17_000, "J", date(2026, 3, 15))).entry  # 51,000 -> GOLD
    assert (await undo(first, "k1")).member.tier is Tier.SILVER  # replayed upgrade on 2026-03-15
    result = await undo(gold, "k2")  # nothing left
    assert (result.tier_event.from_tier, result.tier_event.to_tier) == (Tier.SILVER, Tier.STANDARD)


# ---- refusals and idempotency ---------------------------------------------------------


async def test_reversing_twice_is_already_reversed(db):
    member = await new_member()
    flight = (await fly(member, "R1", 1000, "J", date(2026, 3, 15))).entry
    first = await undo(flight, "k1")
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await undo(flight, "k2")
    assert (error.value.code, error.value.field) == ("ALREADY_REVERSED", ("input", "entryId"))
    assert await state(member) == before
    # the same key is a replay, not a refusal
    again = await undo(flight, "k1")
    assert again.replayed is True and again.entry.id == first.entry.id
    assert await state(member) == before


async def test_replay_returns_the_tier_event_and_conflict_is_refused(db):
    member = await new_member()
    await fly(member, "R1", 10_000, "J", date(2026, 1, 10))
    upgrading = (await fly(member, "R2", 3_500, "J", date(2026, 3, 15))).entry
    other = (await fly(member, "R3", 1_000, "Y", date(2026, 3, 16))).entry
    first = await undo(upgrading, "k1")
    again = await undo(upgrading, "k1")
    assert again.replayed and again.tier_event.id == first.tier_event.id
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await undo(other, "k1")
    assert (error.value.code, error.value.field) == ("IDEMPOTENCY_CONFLICT", ("input", "idempotencyKey"))
    with pytest.raises(DomainError) as error:
        await undo(upgrading, "k1", reason="another reason")
    assert error.value.code == "IDEMPOTENCY_CONFLICT"
    assert await state(member) == before


async def test_airline_may_reverse_only_its_flight_entries(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    partner = await credit(member, "P1", 2500, date(2026, 3, 1))
    flight = (await fly(member, "R1", 1000, "Y", date(2026, 3, 15))).entry
    bonus = await LedgerEntry.get(bonus_for_id=flight.id)
    redemption = (await spend(member, 100, "r1")).entry
    before = await state(member)
    for entry in (partner, bonus, redemption):
        with pytest.raises(ForbiddenError):
            await undo(entry, f"k{entry.id}", caller=AIRLINE)
    assert await state(member) == before


async def test_bonus_alone_and_reversal_are_invalid(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=date(2027, 12, 31))
    flight = (await fly(member, "R1", 1000, "Y", date(2026, 3, 15))).entry
    bonus = await LedgerEntry.get(bonus_for_id=flight.id)
    with pytest.raises(DomainError) as error:
        await undo(bonus, "k1")
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "entryId"))
    reversal = (await undo(flight, "k2")).entry
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await undo(reversal, "k3")
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "entryId"))
    assert await state(member) == before


@pytest.mark.parametrize("entry_id", ["999999999", "abc", "", "-1"])
async def test_unknown_entry_is_not_found(db, entry_id):
    with pytest.raises(DomainError) as error:
        await undo(entry_id, "k1")
    assert (error.value.code, error.value.field) == ("NOT_FOUND", ("input", "entryId"))
    assert await LedgerEntry.all().count() == 0


async def test_reason_is_required(db):
    member = await new_member()
    flight = (await fly(member, "R1", 1000, "J", date(2026, 3, 15))).entry
    for reason in ("", "   ", "r" * 201):
        with pytest.raises(DomainError) as error:
            await undo(flight, "k1", reason=reason)
        assert (error.value.code, error.value.field) == ("INVALID", ("input", "reason"))
    assert not await LedgerEntry.filter(kind=LedgerEntryKind.REVERSAL).exists()


@pytest.mark.parametrize(
    "caller",
    [Caller(Role.MEMBER, "1", member_id=1), Caller(Role.PARTNER, "u", scope="HOTEL1"), Caller(Role.BRANCH, "b", scope="BJ")],
)
async def test_other_roles_are_forbidden(db, caller):
    member = await new_member()
    flight = (await fly(member, "R1", 1000, "J", date(2026, 3, 15))).entry
    with pytest.raises(ForbiddenError):
        await undo(flight, "k1", caller=caller)
    assert not await LedgerEntry.filter(kind=LedgerEntryKind.REVERSAL).exists()
