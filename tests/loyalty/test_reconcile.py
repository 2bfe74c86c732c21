"""Ledger reconciliation (RULES.md "Miles"): loyalty.jobs.reconcile proves for every member
balance == SUM(ledger redeemable miles) and SUM(lot remaining) == max(balance, 0)."""

from __future__ import annotations

from datetime import date

from tortoise.expressions import F

from loyalty import calendar as cal
from loyalty.jobs import Difference, reconcile
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from members.access import Caller, Role
from members.addresses import Address
from members.models import Member
from members.services import Enrolment, enroll

D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")


async def new_member(name: str = "Wang") -> Member:
    return await enroll(
        ADMIN, Enrolment(name, "Fang", Address(country="CN", province="Beijing", city="Beijing")), today=D("2026-01-10")
    )


async def credit(member: Member, day: date, miles: int) -> CreditLot:
    entry = await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.FLIGHT, activity_date=day, qualifying_miles=miles,
        redeemable_miles=miles, source="AIRLINE",
    )
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") + miles)
    return await CreditLot.create(entry_id=entry.id, member_id=member.id, expires_on=cal.credit_expiry(day, 36), remaining=miles)


async def debit(member: Member, miles: int, lot: CreditLot) -> None:
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REDEMPTION, activity_date=D("2026-05-01"), redeemable_miles=-miles, source="MEMBER"
    )
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") - miles)
    await CreditLot.filter(id=lot.id).update(remaining=F("remaining") - miles)


async def consistent_ledger() -> list[Member]:
    a, b, c = await new_member("A"), await new_member("B"), await new_member("C")  # c has no entries
    lot = await credit(a, D("2026-02-01"), 5_000)
    await credit(a, D("2026-03-01"), 1_200)
    await debit(a, 3_000, lot)
    await credit(b, D("2026-02-01"), 800)
    return [a, b, c]


async def test_a_consistent_ledger_has_no_differences(db):
    await consistent_ledger()
    calls: list[tuple[int, int]] = []

    assert await reconcile(progress=lambda d, t: calls.append((d, t))) == (3, [])
    assert calls[-1] == (3, 3)


async def test_an_empty_programme(db):
    assert await reconcile() == (0, [])


async def test_a_negative_balance_with_empty_lots_is_consistent(db):
    member = await new_member()
    lot = await credit(member, D("2026-02-01"), 1_000)
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REVERSAL, activity_date=D("2026-02-01"), redeemable_miles=-1_500, source="ADMIN",
    )
    await Member.filter(id=member.id).update(redeemable_miles=-500)
    await CreditLot.filter(id=lot.id).update(remaining=0)

    assert await reconcile() == (1, [])


async def test_a_broken_balance_is_reported(db):
    a, b, c = await consistent_ledger()
    await Member.filter(id=a.id).update(redeemable_miles=F("redeemable_miles") + 5)  # 3,200 -> 3,205

    checked, differences = await reconcile()

    assert checked == 3
    assert differences == [Difference(member_id=a.id, card_number=a.card_number, balance=3_205, ledger_sum=3_200, lots_sum=3_200)]


async def test_broken_lots_and_a_balance_without_ledger_are_reported(db):
    a, b, c = await consistent_ledger()
    await CreditLot.filter(member_id=b.id).update(remaining=700)  # lots 700, balance and ledger 800
    await Member.filter(id=c.id).update(redeemable_miles=50)  # no entries at all

    checked, differences = await reconcile(batch_size=2)  # a and b in one batch, c in the next

    assert checked == 3
    assert differences == [
        Difference(member_id=b.id, card_number=b.card_number, balance=800, ledger_sum=800, lots_sum=700),
        Difference(member_id=c.id, card_number=c.card_number, balance=50, ledger_sum=0, lots_sum=0),
    ]


async def test_lots_left_over_a_negative_balance_are_reported(db):
    member = await new_member()
    await credit(member, D("2026-02-01"), 1_000)
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REVERSAL, activity_date=D("2026-02-01"), redeemable_miles=-1_500, source="ADMIN",
    )
    await Member.filter(id=member.id).update(redeemable_miles=-500)  # but the lot still holds 1,000

    _, differences = await reconcile()

    assert differences == [Difference(member.id, member.card_number, -500, -500, 1_000)]
