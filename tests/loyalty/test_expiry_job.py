"""Miles expiry (RULES.md "Expiry", "Dates"): loyalty.jobs.expire_miles and
loyalty.jobs.miles_expiring_soon.

A credit of 2026-03-15 expires at the end of the 36th month after its month:
2029-03-31, and is good through that day. `--as-of D` expires credits whose expiry
date is before D. One EXPIRY entry per member and run, for what is left of the lots.
"""

from __future__ import annotations

from datetime import date, timedelta

from tortoise.expressions import F

from loyalty import calendar as cal
from loyalty.jobs import ExpirySummary, expire_miles, miles_expiring_soon, reconcile
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")


async def new_member(name: str = "Wang") -> Member:
    return await enroll(
        ADMIN, Enrolment(name, "Fang", Address(country="CN", province="Beijing", city="Beijing")), today=D("2026-01-10")
    )


async def credit(member: Member, day: date, miles: int, expires_on: date | None = None) -> CreditLot:
    """A PARTNER credit with its lot, the balance kept consistent."""
    entry = await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.PARTNER, activity_date=day, redeemable_miles=miles, source="HOTEL"
    )
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") + miles)
    return await CreditLot.create(
        entry_id=entry.id, member_id=member.id, remaining=miles,
        expires_on=expires_on or cal.credit_expiry(day, RULES.credit_validity_months),
    )


async def redeem(member: Member, day: date, miles: int, lot: CreditLot) -> None:
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REDEMPTION, activity_date=day, redeemable_miles=-miles, source="MEMBER"
    )
    await Member.filter(id=member.id).update(redeemable_miles=F("redeemable_miles") - miles)
    await CreditLot.filter(id=lot.id).update(remaining=F("remaining") - miles)


async def balance(member: Member) -> int:
    return (await Member.get(id=member.id)).redeemable_miles


async def expiry_entries(member: Member) -> list[LedgerEntry]:
    return await LedgerEntry.filter(member_id=member.id, kind=LedgerEntryKind.EXPIRY).order_by("id")


async def test_credit_is_good_through_its_expiry_date(db):
    member = await new_member()
    lot = await credit(member, D("2026-03-15"), 1_000)
    assert lot.expires_on == D("2029-03-31")

    assert await expire_miles(D("2029-03-31")) == ExpirySummary(members=0, entries=0, miles=0)
    assert await balance(member) == 1_000
    assert await expiry_entries(member) == []

    assert await expire_miles(D("2029-04-01")) == ExpirySummary(members=1, entries=1, miles=1_000)
    (entry,) = await expiry_entries(member)
    assert (entry.redeemable_miles, entry.qualifying_miles, entry.qualifying_segments) == (-1_000, 0, 0)
    assert entry.activity_date == D("2029-03-31")  # the last day the miles were good
    assert entry.source == "SYSTEM"
    assert (await CreditLot.get(id=lot.id)).remaining == 0
    assert await balance(member) == 0
    assert await reconcile() == (1, [])


async def test_a_partly_spent_credit_expires_only_what_is_left(db):
    member = await new_member()
    lot = await credit(member, D("2026-03-15"), 1_000)
    await redeem(member, D("2027-01-10"), 400, lot)

    summary = await expire_miles(D("2029-04-01"))

    assert summary == ExpirySummary(members=1, entries=1, miles=600)
    (entry,) = await expiry_entries(member)
    assert entry.redeemable_miles == -600
    assert await balance(member) == 0
    assert await reconcile() == (1, [])


async def test_one_entry_per_member_for_all_expired_lots_and_later_lots_stay(db):
    member = await new_member()
    older = await credit(member, D("2026-01-20"), 300)  # expires 2029-01-31
    old = await credit(member, D("2026-03-15"), 500)  # expires 2029-03-31
    young = await credit(member, D("2026-04-01"), 700)  # expires 2029-04-30: still good on 2029-04-30

    summary = await expire_miles(D("2029-04-30"))

    assert summary == ExpirySummary(members=1, entries=1, miles=800)
    (entry,) = await expiry_entries(member)
    assert (entry.redeemable_miles, entry.activity_date) == (-800, D("2029-03-31"))  # the latest expiry among them
    assert [(await CreditLot.get(id=lot.id)).remaining for lot in (older, old, young)] == [0, 0, 700]
    assert await balance(member) == 700
    assert await reconcile() == (1, [])


async def test_a_second_run_expires_nothing(db):
    member = await new_member()
    await credit(member, D("2026-03-15"), 1_000)
    await expire_miles(D("2029-04-01"))

    assert await expire_miles(D("2029-04-01")) == ExpirySummary(0, 0, 0)
    assert await expire_miles(D("2029-05-01")) == ExpirySummary(0, 0, 0)
    assert len(await expiry_entries(member)) == 1
    assert await balance(member) == 0


async def test_a_member_in_debt_has_nothing_to_expire(db):
    # A reversal took the balance below zero: the credit's lot was emptied by the debt.
    member = await new_member()
    lot = await credit(member, D("2026-03-15"), 1_000)
    await LedgerEntry.create(
        member_id=member.id, kind=LedgerEntryKind.REVERSAL, activity_date=D("2026-02-01"), redeemable_miles=-1_500, source="ADMIN",
    )
    await Member.filter(id=member.id).update(redeemable_miles=-500)
    await CreditLot.filter(id=lot.id).update(remaining=0)

    assert await expire_miles(D("2029-04-01")) == ExpirySummary(0, 0, 0)
    assert await balance(member) == -500
    assert await reconcile() == (1, [])


async def test_many_members_in_batches_with_progress(db):
    members = [await new_member(f"M{i}") for i in range(5)]
    for i, member in enumerate(members):
        await credit(member, D("2026-03-15"), 100 * (i + 1))
    spared = await new_member("Spared")
    await credit(spared, D("2026-06-15"), 999)
    calls: list[tuple[int, int]] = []

    summary = await expire_miles(D("2029-04-01"), batch_size=2, progress=lambda d, t: calls.append((d, t)))

    assert summary == ExpirySummary(members=5, entries=5, miles=1_500)
    assert calls[0] == (0, 5) and calls[-1] == (5, 5)
    assert [await balance(m) for m in members] == [0] * 5
    assert await balance(spared) == 999
    assert await reconcile() == (6, [])


async def test_miles_expiring_soon_counts_the_next_90_days(db):
    member = await new_member()
    today = D("2029-01-01")
    await credit(member, D("2025-12-01"), 1, expires_on=today - timedelta(days=1))  # expired, not yet processed
    await credit(member, D("2026-01-01"), 10, expires_on=today)  # last good day today
    await credit(member, D("2026-02-01"), 100, expires_on=today + timedelta(days=90))  # 2029-04-01
    await credit(member, D("2026-03-01"), 1_000, expires_on=today + timedelta(days=91))

    assert await miles_expiring_soon(member.id, rules=RULES, today=today) == 110


async def test_miles_expiring_soon_never_exceeds_the_balance(db):
    member = await new_member()
    lot = await credit(member, D("2026-03-15"), 1_000)
    await redeem(member, D("2026-04-01"), 250, lot)

    assert await miles_expiring_soon(member.id, rules=RULES, today=D("2029-03-01")) == 750
    # A balance broken by hand (reconcile would report it) still caps the answer.
    await Member.filter(id=member.id).update(redeemable_miles=100)
    assert await miles_expiring_soon(member.id, rules=RULES, today=D("2029-03-01")) == 100
    assert await miles_expiring_soon(member.id, rules=RULES, today=D("2028-12-01")) == 0  # 2029-03-31 is 120 days away
