"""milesRedeem: REDEMPTION entries, FIFO over credit lots, balance checks, idempotencyKey."""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.functions import Coalesce, Sum

from loyalty.ledger import partner_accrue, redeem
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.enums import MemberStatus
from members.errors import DomainError, ForbiddenError
from members.models import IdempotencyRecord, Member
from members.services import Enrolment, enroll, set_status

RULES = load_rules()
TODAY = date(2026, 3, 20)
ADMIN = Caller(Role.ADMIN, "t")


async def new_member(family: str = "Wang", given: str = "Fang") -> Member:
    return await enroll(
        ADMIN,
        Enrolment(family_name=family, given_name=given, address=Address(country="CN", province="Beijing", city="Beijing")),
        today=date(2025, 1, 2),
    )


def member_caller(member: Member) -> Caller:
    return Caller(Role.MEMBER, str(member.id), member_id=member.id)


async def credit(member: Member, ref: str, miles: int, day: date) -> LedgerEntry:
    result = await partner_accrue(
        ADMIN, member.card_number, member.family_name, miles, day, None, ref, rules=RULES, today=TODAY
    )
    return result.entry


async def spend(member: Member, miles: int, key: str, *, caller: Caller | None = None, description: str = "upgrade",
                member_id: str | None = None, today: date = TODAY):
    return await redeem(
        caller or member_caller(member), member_id or str(member.id), miles, description, key, rules=RULES, today=today
    )


async def lot_of(entry: LedgerEntry) -> int:
    return (await CreditLot.get(entry_id=entry.id)).remaining


async def state(member: Member) -> tuple:
    row = await Member.get(id=member.id)
    lots = await CreditLot.filter(member_id=member.id).order_by("id").values_list("remaining", flat=True)
    return (
        await LedgerEntry.filter(member_id=member.id).count(),
        list(lots),
        row.redeemable_miles,
        await IdempotencyRecord.all().count(),
    )


async def assert_invariant(member: Member) -> None:
    row = await Member.get(id=member.id)
    ledger = await LedgerEntry.filter(member_id=member.id).annotate(s=Coalesce(Sum("redeemable_miles"), 0)).first().values("s")
    lots = await CreditLot.filter(member_id=member.id).annotate(s=Coalesce(Sum("remaining"), 0)).first().values("s")
    assert row.redeemable_miles == int(ledger["s"] or 0)
    assert int(lots["s"] or 0) == max(row.redeemable_miles, 0)


async def test_redemption_uses_the_earliest_expiring_credits_first(db):
    member = await new_member()
    a = await credit(member, "A", 1000, date(2025, 10, 5))  # expires 2028-10-31
    b = await credit(member, "B", 2000, date(2026, 1, 10))  # expires 2029-01-31
    c = await credit(member, "C", 500, date(2025, 12, 1))  # expires 2028-12-31 (posted last)
    assert [(await CreditLot.get(entry_id=e.id)).expires_on for e in (a, b, c)] == [
        date(2028, 10, 31), date(2029, 1, 31), date(2028, 12, 31)
    ]

    result = await spend(member, 1200, "k1")
    entry = result.entry
    assert entry.kind is LedgerEntryKind.REDEMPTION
    assert (entry.redeemable_miles, entry.qualifying_miles, entry.qualifying_segments) == (-1200, 0, 0)
    assert entry.activity_date == TODAY and entry.description == "upgrade"
    assert entry.source == "MEMBER"
    assert result.member.redeemable_miles == 2300
    assert result.replayed is False and result.tier_event is None
    assert (await lot_of(a), await lot_of(c), await lot_of(b)) == (0, 300, 2000)  # A, then C

    await spend(member, 1000, "k2")
    assert (await lot_of(a), await lot_of(c), await lot_of(b)) == (0, 0, 1300)  # C, then B
    result = await spend(member, 1300, "k3")
    assert result.member.redeemable_miles == 0
    assert (await lot_of(a), await lot_of(c), await lot_of(b)) == (0, 0, 0)
    await assert_invariant(member)


async def test_same_expiry_is_taken_in_posting_order(db):
    member = await new_member()
    first = await credit(member, "A", 400, date(2026, 1, 31))
    second = await credit(member, "B", 400, date(2026, 1, 2))  # same month: same expiry 2029-01-31
    await spend(member, 500, "k1")
    assert (await lot_of(first), await lot_of(second)) == (0, 300)


async def test_insufficient_miles_writes_nothing(db):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await spend(member, 3001, "k1")
    assert (error.value.code, error.value.field) == ("INSUFFICIENT_MILES", ("input", "miles"))
    assert await state(member) == before
    # the whole balance may be redeemed, with the same key (the refusal did not use it up)
    result = await spend(member, 3000, "k1")
    assert result.member.redeemable_miles == 0
    await assert_invariant(member)


async def test_nothing_to_redeem_at_zero(db):
    member = await new_member()
    with pytest.raises(DomainError) as error:
        await spend(member, 1, "k1")
    assert error.value.code == "INSUFFICIENT_MILES"


@pytest.mark.parametrize(
    ("miles", "description", "field"),
    [
        (0, "x", ("input", "miles")),
        (-100, "x", ("input", "miles")),
        (True, "x", ("input", "miles")),
        (100, "", ("input", "description")),
        (100, "   ", ("input", "description")),
        (100, "d" * 301, ("input", "description")),
    ],
)
async def test_invalid_input_writes_nothing(db, miles, description, field):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await spend(member, miles, "k1", description=description)
    assert (error.value.code, error.value.field) == ("INVALID", field)
    assert await state(member) == before


@pytest.mark.parametrize("key", ["", "   ", "k" * 129])
async def test_invalid_idempotency_key(db, key):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    with pytest.raises(DomainError) as error:
        await spend(member, 100, key)
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "idempotencyKey"))
    assert (await Member.get(id=member.id)).redeemable_miles == 3000


async def test_member_redeems_only_their_own_miles(db):
    me, other = await new_member(), await new_member("Li", "Lei")
    await credit(other, "A", 3000, date(2026, 3, 1))
    before = await state(other)
    with pytest.raises(DomainError) as error:
        await spend(me, 100, "k1", member_id=str(other.id))
    assert (error.value.code, error.value.field) == ("NOT_FOUND", ("input", "memberId"))
    with pytest.raises(DomainError) as error:
        await spend(me, 100, "k1", member_id="no-such-id")
    assert error.value.code == "NOT_FOUND"
    assert await state(other) == before


async def test_admin_redeems_for_any_member(db):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    result = await spend(member, 1000, "k1", caller=ADMIN)
    assert result.entry.source == "ADMIN" and result.member.redeemable_miles == 2000


@pytest.mark.parametrize(
    "caller",
    [Caller(Role.AIRLINE, "ca"), Caller(Role.PARTNER, "u", scope="HOTEL1"), Caller(Role.OFFICE, "s", scope="PEK01")],
)
async def test_other_roles_are_forbidden(db, caller):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    with pytest.raises(ForbiddenError):
        await spend(member, 100, "k1", caller=caller)
    assert (await Member.get(id=member.id)).redeemable_miles == 3000


@pytest.mark.parametrize("status", [MemberStatus.SUSPENDED, MemberStatus.CLOSED])
async def test_member_not_active_keeps_the_key_unused(db, status):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    await set_status(ADMIN, str(member.id), status, "test")
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await spend(member, 1000, "k1", caller=ADMIN)
    assert (error.value.code, error.value.field) == ("MEMBER_NOT_ACTIVE", ("input", "memberId"))
    assert await state(member) == before
    await set_status(ADMIN, str(member.id), MemberStatus.ACTIVE, "test")
    result = await spend(member, 1000, "k1", caller=ADMIN)
    assert result.replayed is False and result.member.redeemable_miles == 2000


async def test_replay_returns_the_original_and_conflict_is_refused(db):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    first = await spend(member, 1000, "k1")
    before = await state(member)
    again = await spend(member, 1000, "k1")
    assert again.replayed is True and again.entry.id == first.entry.id
    assert again.member.redeemable_miles == 2000
    assert await state(member) == before
    for miles, description in ((1001, "upgrade"), (1000, "lounge")):
        with pytest.raises(DomainError) as error:
            await spend(member, miles, "k1", description=description)
        assert (error.value.code, error.value.field) == ("IDEMPOTENCY_CONFLICT", ("input", "idempotencyKey"))
    assert await state(member) == before


async def test_keys_are_per_caller(db):
    member = await new_member()
    await credit(member, "A", 3000, date(2026, 3, 1))
    mine = await spend(member, 1000, "same-key")
    admins = await spend(member, 1000, "same-key", caller=ADMIN)
    assert mine.entry.id != admins.entry.id
    assert admins.member.redeemable_miles == 1000
