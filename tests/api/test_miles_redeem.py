"""milesRedeem: earliest-expiring credits first, INSUFFICIENT_MILES, a member their own
miles and an admin anyone's, idempotencyKey replays per caller; a refusal writes nothing."""

from __future__ import annotations

import pytest

from tests.api.conftest import as_member, data, enroll, error_codes, problems, set_status
from tests.api.loyalty_factories import (
    ADMIN, loyalty_assert_balanced, loyalty_fly, loyalty_footprint, loyalty_lots, loyalty_miles, loyalty_months_back,
    loyalty_old_credit, loyalty_redeem, loyalty_register_partner, loyalty_today,
)


async def _member_with(api, miles_3000_flights: int = 1) -> dict:
    """A member holding 3,000 miles per flight (1,000 km in J)."""
    member = await enroll(api)
    for n in range(miles_3000_flights):
        await loyalty_fly(api, member, f"{member['cardNumber']}-{n}")
    return member


async def _redeemed(api, member: dict, miles: int, key: str, as_: tuple = ADMIN, **kw) -> dict:
    payload = data(await loyalty_redeem(api, member["id"], miles, key, as_, **kw))["milesRedeem"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def _refused(api, member: dict, miles: int, key: str, as_: tuple = ADMIN, **kw) -> dict:
    payload = data(await loyalty_redeem(api, member["id"], miles, key, as_, **kw))["milesRedeem"]
    assert (payload["entry"], payload["member"]) == (None, None)
    return payload


# ---- success ---------------------------------------------------------------------------


async def test_a_member_redeems_their_own_miles(api):
    member = await _member_with(api)
    payload = await _redeemed(api, member, 1200, "k1", as_member(member), description="lounge pass")
    entry = payload["entry"]
    assert {k: entry[k] for k in ("kind", "redeemableMiles", "qualifyingMiles", "source", "description", "activityDate")} == {
        "kind": "REDEMPTION", "redeemableMiles": -1200, "qualifyingMiles": 0, "source": "MEMBER",
        "description": "lounge pass", "activityDate": loyalty_today(api).isoformat(),
    }
    assert payload["member"] == {"id": member["id"], "redeemableMiles": 1800}
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 1800
    await loyalty_assert_balanced(member)


async def test_an_admin_redeems_any_members_miles(api):
    member = await _member_with(api)
    payload = await _redeemed(api, member, 3000, "k1", ADMIN)
    assert (payload["entry"]["source"], payload["member"]["redeemableMiles"]) == ("ADMIN", 0)


async def test_redemptions_use_the_earliest_expiring_credits_first(api):
    """Posted newest-expiring first, so FIFO by posting would take the flight's miles."""
    member = await enroll(api)
    today = loyalty_today(api)
    flight = (await loyalty_fly(api, member, "NEW"))["entry"]  # 3,000, good for 36 months
    oldest = await loyalty_old_credit(member, 2000, loyalty_months_back(today, 36), "OLD-1")  # good to this month's end
    middle = await loyalty_old_credit(member, 1500, loyalty_months_back(today, 35), "OLD-2")  # to next month's end
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 6500, "milesExpiringSoon": 3500}

    await _redeemed(api, member, 2500, "r1")
    assert await loyalty_lots(member) == {int(flight["id"]): 3000, oldest: 0, middle: 1000}
    assert (await loyalty_miles(api, member))["milesExpiringSoon"] == 1000

    await _redeemed(api, member, 1500, "r2")
    assert await loyalty_lots(member) == {int(flight["id"]): 2500, oldest: 0, middle: 0}
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 2500, "milesExpiringSoon": 0}
    await loyalty_assert_balanced(member)


async def test_the_whole_balance_may_be_redeemed(api):
    member = await _member_with(api, 2)
    assert (await _redeemed(api, member, 6000, "all"))["member"]["redeemableMiles"] == 0
    assert sorted((await loyalty_lots(member)).values()) == [0, 0]


# ---- refusals ---------------------------------------------------------------------------


async def test_more_than_the_balance_is_insufficient_miles_and_writes_nothing(api):
    member = await _member_with(api)
    before = await loyalty_footprint(member)
    payload = await _refused(api, member, 3001, "big")
    assert problems(payload) == [("INSUFFICIENT_MILES", ["input", "miles"])]
    assert "3,000" in payload["userErrors"][0]["message"]
    assert await loyalty_footprint(member) == before
    assert list((await loyalty_lots(member)).values()) == [3000]


async def test_a_refused_request_does_not_use_up_its_key(api):
    member = await _member_with(api)
    assert problems(await _refused(api, member, 5000, "again")) == [("INSUFFICIENT_MILES", ["input", "miles"])]
    await loyalty_fly(api, member, "MORE")
    assert (await _redeemed(api, member, 5000, "again"))["member"]["redeemableMiles"] == 1000


@pytest.mark.parametrize("status", ["SUSPENDED", "CLOSED"])
async def test_no_redemption_for_a_member_who_is_not_active(api, status):
    member = await _member_with(api)
    await set_status(api, member, status)
    before = await loyalty_footprint(member)
    payload = await _refused(api, member, 100, "na")
    assert problems(payload) == [("MEMBER_NOT_ACTIVE", ["input", "memberId"])]
    assert await loyalty_footprint(member) == before


@pytest.mark.parametrize(
    ("miles", "description", "key", "field"),
    [
        (0, "x", "k", "miles"),
        (-100, "x", "k", "miles"),
        (100, "  ", "k", "description"),
        (100, "x" * 301, "k", "description"),
        (100, "x", " ", "idempotencyKey"),
        (100, "x", "k" * 129, "idempotencyKey"),
    ],
)
async def test_invalid_input_names_the_field(api, miles, description, key, field):
    member = await _member_with(api)
    before = await loyalty_footprint(member)
    payload = await _refused(api, member, miles, key, description=description)
    assert problems(payload) == [("INVALID", ["input", field])]
    assert await loyalty_footprint(member) == before


@pytest.mark.parametrize("member_id", ["999999", "abc"])
async def test_an_unknown_member_is_not_found(api, member_id):
    payload = await _refused(api, {"id": member_id}, 100, "k")
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]


async def test_a_member_cannot_redeem_another_members_miles(api):
    me, other = await _member_with(api), await _member_with(api)
    before = await loyalty_footprint(other)
    payload = await _refused(api, other, 100, "k", as_member(me))
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]  # its existence does not leak
    assert await loyalty_footprint(other) == before


@pytest.mark.parametrize("role", ["airline", "partner", "office", "branch"])
async def test_other_roles_are_forbidden(api, role):
    await loyalty_register_partner("HOTELCO")
    member = await _member_with(api)
    as_ = {"airline": ("airline",), "partner": ("partner", "HOTELCO"), "office": ("office", "PEK01"),
           "branch": ("branch", "NCB")}[role]
    result = await loyalty_redeem(api, member["id"], 100, "k", as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 3000


# ---- idempotencyKey -----------------------------------------------------------------------


async def test_the_same_key_and_content_returns_the_first_redemption(api):
    member = await _member_with(api)
    first = await _redeemed(api, member, 1000, "same", as_member(member))
    before = await loyalty_footprint(member)
    again = await _redeemed(api, member, 1000, "same", as_member(member))
    assert again["entry"] == first["entry"]
    assert await loyalty_footprint(member) == before
    assert before["balance"] == 2000


@pytest.mark.parametrize("changes", [{"miles": 1001}, {"description": "another thing"}])
async def test_the_same_key_with_other_content_is_a_conflict(api, changes):
    member = await _member_with(api)
    await _redeemed(api, member, 1000, "same", description="upgrade voucher")
    before = await loyalty_footprint(member)
    args = {"miles": 1000, "description": "upgrade voucher", **changes}
    payload = await _refused(api, member, args["miles"], "same", description=args["description"])
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await loyalty_footprint(member) == before


async def test_keys_belong_to_their_caller(api):
    """The member's key "k" and the admin's key "k" are two keys: two redemptions."""
    member = await _member_with(api)
    mine = await _redeemed(api, member, 1000, "k", as_member(member))
    admins = await _redeemed(api, member, 1000, "k", ADMIN)
    assert mine["entry"]["id"] != admins["entry"]["id"]
    assert admins["member"]["redeemableMiles"] == 1000
