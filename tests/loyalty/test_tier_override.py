"""Manual tier override (RULES.md "Manual override"): loyalty.tiers.override_tier.

Admin only; any tier; validUntil defaults to what an upgrade on that day gives (24
months counting the month itself: 2026-03-15 -> 2028-02-29); a reason is required;
the change is an audited TierEvent with reason MANUAL.
"""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.models import TierChangeReason, TierEvent
from loyalty.rules import load_rules
from loyalty.tiers import override_tier
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.errors import DomainError, ForbiddenError
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "alice")
TODAY = D("2026-03-15")


async def new_member() -> Member:
    return await enroll(
        ADMIN, Enrolment("Wang", "Fang", Address(country="CN", province="Beijing", city="Beijing")), today=D("2026-01-10")
    )


async def test_override_defaults_to_upgrade_validity(db):
    member = await new_member()

    row, event = await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "  VIP  customer ", rules=RULES, today=TODAY)

    assert (row.tier, row.tier_since, row.tier_valid_until) == (Tier.GOLD, TODAY, D("2028-02-29"))
    assert (event.from_tier, event.to_tier, event.reason) == (Tier.STANDARD, Tier.GOLD, TierChangeReason.MANUAL)
    assert (event.since, event.valid_until) == (TODAY, D("2028-02-29"))
    assert event.actor == "admin:alice"
    assert event.note == "VIP customer"
    assert (event.office_code, event.branch_code) == ("PEK01", "NCB")
    stored = await Member.get(id=member.id)
    assert (stored.tier, stored.tier_valid_until) == (Tier.GOLD, D("2028-02-29"))
    assert await TierEvent.filter(member_id=member.id).count() == 1


async def test_override_with_explicit_valid_until(db):
    member = await new_member()

    row, event = await override_tier(ADMIN, str(member.id), Tier.PLATINUM, D("2026-12-31"), "fast track", rules=RULES, today=TODAY)

    assert (row.tier, row.tier_valid_until) == (Tier.PLATINUM, D("2026-12-31"))
    assert event.valid_until == D("2026-12-31")


async def test_valid_until_today_is_accepted(db):
    member = await new_member()

    row, _ = await override_tier(ADMIN, str(member.id), Tier.SILVER, TODAY, "one day", rules=RULES, today=TODAY)

    assert row.tier_valid_until == TODAY


async def test_override_to_standard_has_no_validity(db):
    member = await new_member()
    await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "promotion", rules=RULES, today=TODAY)

    row, event = await override_tier(ADMIN, str(member.id), Tier.STANDARD, None, "fraud", rules=RULES, today=D("2026-04-01"))

    assert (row.tier, row.tier_since, row.tier_valid_until) == (Tier.STANDARD, D("2026-04-01"), None)
    assert (event.from_tier, event.to_tier, event.valid_until) == (Tier.GOLD, Tier.STANDARD, None)


async def test_same_tier_again_changes_its_validity(db):
    member = await new_member()
    await override_tier(ADMIN, str(member.id), Tier.GOLD, None, "promotion", rules=RULES, today=TODAY)

    row, event = await override_tier(ADMIN, str(member.id), Tier.GOLD, D("2030-01-31"), "extension", rules=RULES, today=TODAY)

    assert (event.from_tier, event.to_tier) == (Tier.GOLD, Tier.GOLD)
    assert row.tier_valid_until == D("2030-01-31")


@pytest.mark.parametrize(
    ("tier", "valid_until", "reason", "field"),
    [
        (Tier.GOLD, None, "", ("input", "reason")),
        (Tier.GOLD, None, "   ", ("input", "reason")),
        (Tier.GOLD, None, None, ("input", "reason")),
        (Tier.GOLD, None, "x" * 281, ("input", "reason")),
        (Tier.STANDARD, D("2027-01-31"), "demotion", ("input", "validUntil")),
        (Tier.GOLD, D("2026-03-14"), "in the past", ("input", "validUntil")),
    ],
)
async def test_invalid_overrides(db, tier, valid_until, reason, field):
    member = await new_member()

    with pytest.raises(DomainError) as error:
        await override_tier(ADMIN, str(member.id), tier, valid_until, reason, rules=RULES, today=TODAY)

    assert (error.value.code, error.value.field) == ("INVALID", field)
    stored = await Member.get(id=member.id)
    assert (stored.tier, stored.tier_valid_until) == (Tier.STANDARD, None)
    assert await TierEvent.all().count() == 0


@pytest.mark.parametrize("member_id", ["999999", "abc", ""])
async def test_unknown_member_is_not_found(db, member_id):
    with pytest.raises(DomainError) as error:
        await override_tier(ADMIN, member_id, Tier.GOLD, None, "why", rules=RULES, today=TODAY)

    assert (error.value.code, error.value.field) == ("NOT_FOUND", ("input", "memberId"))


@pytest.mark.parametrize(
    "caller",
    [Caller(Role.OFFICE, "s", "PEK01", office_id=1, branch_id=1), Caller(Role.BRANCH, "s", "NCB", branch_id=1),
     Caller(Role.AIRLINE, "ca"), Caller(Role.PARTNER, "p", "HOTEL"), Caller(Role.MEMBER, "1", member_id=1)],
)
async def test_only_an_admin_may_override(db, caller):
    member = await new_member()

    with pytest.raises(ForbiddenError):
        await override_tier(caller, str(member.id), Tier.GOLD, None, "why", rules=RULES, today=TODAY)

    assert await TierEvent.all().count() == 0
