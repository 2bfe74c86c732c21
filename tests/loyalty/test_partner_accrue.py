"""partnerAccrue: PARTNER entries (redeemable only), name matching, sources, externalRef."""

from __future__ import annotations

from datetime import date

import pytest
from tortoise.functions import Coalesce, Sum

from loyalty.ledger import partner_accrue
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierEvent
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.cards import card_number
from members.enums import MemberStatus, Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member
from members.partners import add_partner
from members.services import Enrolment, enroll, set_status

RULES = load_rules()
TODAY = date(2026, 3, 20)
ADMIN = Caller(Role.ADMIN, "t")
HOTEL = Caller(Role.PARTNER, "hotel-user", scope="HOTEL1")
BANK = Caller(Role.PARTNER, "bank-user", scope="BANK1")


async def new_member(family: str = "Wang", given: str = "Fang") -> Member:
    await add_partner("HOTEL1", "Hotel One (invented)")
    await add_partner("BANK1", "Bank One (invented)")
    return await enroll(
        ADMIN,
        Enrolment(family_name=family, given_name=given, address=Address(country="CN", province="Beijing", city="Beijing")),
        today=date(2025, 1, 2),
    )


async def post(member: Member, ref: str = "H1", miles: int = 2500, *, family: str | None = None,
               day: date = date(2026, 3, 10), description: str | None = "2 nights", caller: Caller = HOTEL,
               card: str | None = None, today: date = TODAY):
    return await partner_accrue(
        caller, card or member.card_number, member.family_name if family is None else family, miles, day,
        description, ref, rules=RULES, today=today,
    )


async def state(member: Member) -> tuple:
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


async def test_partner_miles_are_redeemable_only(db):
    member = await new_member()
    result = await post(member, "H1", 2500)
    entry = result.entry
    assert entry.kind is LedgerEntryKind.PARTNER
    assert (entry.qualifying_miles, entry.qualifying_segments, entry.redeemable_miles) == (0, 0, 2500)
    assert (entry.source, entry.external_ref, entry.description) == ("HOTEL1", "H1", "2 nights")
    assert entry.activity_date == date(2026, 3, 10)
    assert result.member.redeemable_miles == 2500
    assert result.tier_event is None and result.replayed is False
    lot = await CreditLot.get(entry_id=entry.id)
    assert (lot.remaining, lot.expires_on) == (2500, date(2029, 3, 31))
    await assert_invariant(member)


async def test_no_bonus_and_no_tier_change_however_many_miles(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.GOLD, tier_valid_until=date(2027, 12, 31))
    result = await post(member, "H1", 1_000_000)
    assert await LedgerEntry.filter(member_id=member.id).count() == 1  # no TIER_BONUS
    assert result.member.redeemable_miles == 1_000_000
    assert result.member.tier is Tier.GOLD
    standard = await new_member("Li", "Lei")
    result = await post(standard, "H2", 1_000_000)
    assert result.member.tier is Tier.STANDARD and result.tier_event is None
    assert await TierEvent.all().count() == 0


async def test_admin_posts_with_source_admin(db):
    member = await new_member()
    result = await post(member, "A1", 100, caller=ADMIN)
    assert result.entry.source == "ADMIN"


async def test_external_ref_is_unique_per_source(db):
    member = await new_member()
    hotel = await post(member, "REF-1", 100, caller=HOTEL)
    bank = await post(member, "REF-1", 100, caller=BANK)
    assert hotel.entry.id != bank.entry.id
    assert (hotel.entry.source, bank.entry.source) == ("HOTEL1", "BANK1")
    assert (await Member.get(id=member.id)).redeemable_miles == 200


@pytest.mark.parametrize("spelling", ["wang", "WANG", " W a n g ", "ＷＡＮＧ", "ｗａｎｇ", "Wang\u3000"])
async def test_family_name_matches_case_width_and_space_insensitively(db, spelling):
    member = await new_member("Wang")
    assert (await post(member, "H1", family=spelling)).entry.redeemable_miles == 2500


async def test_chinese_family_name(db):
    member = await new_member("欧阳", "娜娜")
    assert (await post(member, "H1", family="欧 阳")).entry.redeemable_miles == 2500
    with pytest.raises(DomainError) as error:
        await post(member, "H2", family="欧")
    assert error.value.code == "NAME_MISMATCH"


async def test_name_mismatch_writes_nothing(db):
    member = await new_member("Wang")
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await post(member, "H1", family="Wong")
    assert (error.value.code, error.value.field) == ("NAME_MISMATCH", ("input", "familyName"))
    assert await state(member) == before
    # the ref is not used up
    assert (await post(member, "H1")).replayed is False


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"miles": 0}, ("input", "miles")),
        ({"miles": -5}, ("input", "miles")),
        ({"miles": 1_000_001}, ("input", "miles")),
        ({"family": "  "}, ("input", "familyName")),
        ({"day": date(2026, 3, 21)}, ("input", "activityDate")),  # future
        ({"day": date(2025, 9, 19)}, ("input", "activityDate")),  # before 2025-09-20
        ({"ref": ""}, ("input", "externalRef")),
        ({"ref": "r" * 101}, ("input", "externalRef")),
        ({"description": "d" * 301}, ("input", "description")),
        ({"card": "CA123"}, ("input", "cardNumber")),
    ],
)
async def test_invalid_input_writes_nothing(db, kwargs, field):
    member = await new_member()
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await post(member, **kwargs)
    assert (error.value.code, error.value.field) == ("INVALID", field)
    assert await state(member) == before


async def test_bad_check_digit_is_invalid_and_unknown_card_not_found(db):
    member = await new_member()
    wrong_digit = member.card_number[:-1] + str((int(member.card_number[-1]) + 1) % 10)
    with pytest.raises(DomainError) as error:
        await post(member, card=wrong_digit)
    assert (error.value.code, error.value.field) == ("INVALID", ("input", "cardNumber"))
    unknown = card_number(1) if member.card_number != card_number(1) else card_number(2)
    with pytest.raises(DomainError) as error:
        await post(member, card=unknown)
    assert (error.value.code, error.value.field) == ("NOT_FOUND", ("input", "cardNumber"))
    assert await LedgerEntry.all().count() == 0


@pytest.mark.parametrize("status", [MemberStatus.SUSPENDED, MemberStatus.CLOSED])
async def test_member_not_active_keeps_the_ref_unused(db, status):
    member = await new_member()
    await set_status(ADMIN, str(member.id), status, "test")
    before = await state(member)
    with pytest.raises(DomainError) as error:
        await post(member, "H1", 700)
    assert error.value.code == "MEMBER_NOT_ACTIVE"
    assert await state(member) == before
    await set_status(ADMIN, str(member.id), MemberStatus.ACTIVE, "test")
    result = await post(member, "H1", 700)
    assert result.replayed is False and result.member.redeemable_miles == 700


async def test_replay_and_conflict(db):
    member = await new_member()
    first = await post(member, "H1", 2500)
    before = await state(member)
    again = await post(member, "H1", 2500, family="WANG")  # same content: names compare normalised
    assert again.replayed is True and again.entry.id == first.entry.id
    assert again.member.redeemable_miles == 2500
    assert await state(member) == before
    for changes in ({"miles": 2501}, {"day": date(2026, 3, 11)}, {"description": "3 nights"}):
        with pytest.raises(DomainError) as error:
            await post(member, "H1", **{"miles": 2500, **changes})
        assert (error.value.code, error.value.field) == ("IDEMPOTENCY_CONFLICT", ("input", "externalRef"))
    assert await state(member) == before


async def test_credit_while_negative_pays_the_debt_first(db):
    member = await new_member()
    await Member.filter(id=member.id).update(redeemable_miles=-1000)  # as after a reversal of spent miles
    result = await post(member, "H1", 2500)
    assert result.member.redeemable_miles == 1500
    assert (await CreditLot.get(entry_id=result.entry.id)).remaining == 1500
    small = await post(member, "H2", 100)
    assert (await CreditLot.get(entry_id=small.entry.id)).remaining == 100


@pytest.mark.parametrize(
    "caller",
    [
        Caller(Role.AIRLINE, "ca"),
        Caller(Role.MEMBER, "1", member_id=1),
        Caller(Role.OFFICE, "s", scope="PEK01"),
        Caller(Role.PARTNER, "u", scope="GONE", blocked=True),
        Caller(Role.PARTNER, "u", scope=None),
    ],
)
async def test_other_callers_are_forbidden(db, caller):
    member = await new_member()
    with pytest.raises(ForbiddenError):
        await post(member, caller=caller)
    assert await LedgerEntry.all().count() == 0
