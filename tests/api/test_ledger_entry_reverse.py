"""ledgerEntryReverse: REVERSAL entries linked both ways (the bonus too), at most once, an
upgrade that no longer holds is undone (reason REVERSAL), roles (airline: its flights)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import as_member, data, enroll, error_codes, problems, set_status, set_tier
from tests.api.loyalty_factories import (
    ADMIN, AIRLINE, loyalty_assert_balanced, loyalty_fly, loyalty_footprint, loyalty_history, loyalty_miles,
    loyalty_partner_accrue, loyalty_partner_input, loyalty_redeem, loyalty_register_partner, loyalty_reverse,
    loyalty_today,
)

LEDGER = """query($id: ID) { member(id: $id) { ledger(first: 50) { edges { node {
  id kind redeemableMiles reverses { id } reversedBy { id } } } } } }"""


async def _ledger(api, member: dict) -> list[dict]:
    """The member's entries, oldest first."""
    edges = data(await api.gql(LEDGER, {"id": member["id"]}, as_=ADMIN))["member"]["ledger"]["edges"]
    return [edge["node"] for edge in reversed(edges)]


async def _reversed(api, entry_id: str, key: str = "rev-1", as_: tuple = ADMIN, reason: str = "no-show") -> dict:
    payload = data(await loyalty_reverse(api, entry_id, key, as_, reason))["ledgerEntryReverse"]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def _refused(api, entry_id: str, key: str = "rev-x", as_: tuple = ADMIN, reason: str = "no-show") -> dict:
    payload = data(await loyalty_reverse(api, entry_id, key, as_, reason))["ledgerEntryReverse"]
    assert (payload["entry"], payload["member"], payload["tierChange"]) == (None, None, None)
    return payload


# ---- the reversal entries -------------------------------------------------------------


async def test_the_airline_reverses_a_flight_linked_both_ways(api):
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "CA1501-X"))["entry"]
    payload = await _reversed(api, flight["id"], as_=AIRLINE, reason="passenger did not fly")
    entry = payload["entry"]
    assert {k: entry[k] for k in ("kind", "source", "activityDate", "qualifyingMiles", "qualifyingSegments", "redeemableMiles")} == {
        "kind": "REVERSAL", "source": "AIRLINE", "activityDate": flight["activityDate"],
        "qualifyingMiles": -3000, "qualifyingSegments": -3.0, "redeemableMiles": -3000,
    }
    assert entry["reverses"] == {"id": flight["id"], "kind": "FLIGHT"}
    assert "passenger did not fly" in entry["description"]
    assert payload["tierChange"] is None
    assert await _ledger(api, member) == [
        {"id": flight["id"], "kind": "FLIGHT", "redeemableMiles": 3000, "reverses": None, "reversedBy": {"id": entry["id"]}},
        {"id": entry["id"], "kind": "REVERSAL", "redeemableMiles": -3000, "reverses": {"id": flight["id"]}, "reversedBy": None},
    ]
    status = data(await api.gql("query($id: ID) { member(id: $id) { redeemableMiles tierStatus { qualifyingMiles qualifyingSegments } } }",
                                {"id": member["id"]}, as_=ADMIN))["member"]
    assert status == {"redeemableMiles": 0, "tierStatus": {"qualifyingMiles": 0, "qualifyingSegments": 0.0}}
    await loyalty_assert_balanced(member)


async def test_reversing_a_flight_reverses_its_bonus_too(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    flight = (await loyalty_fly(api, member, "BONUS-1"))["entry"]  # 3,000 + 750
    bonus_id = flight["bonus"]["id"]
    payload = await _reversed(api, flight["id"], as_=AIRLINE)
    assert payload["entry"]["reverses"]["id"] == flight["id"]  # the payload's entry is the flight's reversal
    ledger = await _ledger(api, member)
    assert [(e["kind"], e["redeemableMiles"]) for e in ledger] == [
        ("FLIGHT", 3000), ("TIER_BONUS", 750), ("REVERSAL", -3000), ("REVERSAL", -750),
    ]
    flight_rev, bonus_rev = ledger[2], ledger[3]
    assert (ledger[0]["reversedBy"], ledger[1]["reversedBy"]) == ({"id": flight_rev["id"]}, {"id": bonus_rev["id"]})
    assert (flight_rev["reverses"], bonus_rev["reverses"]) == ({"id": flight["id"]}, {"id": bonus_id})
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 0
    await loyalty_assert_balanced(member)


async def test_a_bonus_alone_is_not_reversed_and_a_reversal_is_not_reversed(api):
    member = await enroll(api)
    await set_tier(api, member, "GOLD")
    flight = (await loyalty_fly(api, member, "BONUS-2"))["entry"]
    before = await loyalty_footprint(member)
    assert problems(await _refused(api, flight["bonus"]["id"])) == [("INVALID", ["input", "entryId"])]
    assert await loyalty_footprint(member) == before
    reversal = (await _reversed(api, flight["id"]))["entry"]
    assert problems(await _refused(api, reversal["id"], "k2")) == [("INVALID", ["input", "entryId"])]


# ---- at most once ---------------------------------------------------------------------


async def test_an_entry_is_reversed_at_most_once(api):
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "ONCE"))["entry"]
    first = await _reversed(api, flight["id"], "key-1")
    before = await loyalty_footprint(member)
    payload = await _refused(api, flight["id"], "key-2")
    assert problems(payload) == [("ALREADY_REVERSED", ["input", "entryId"])]
    assert await loyalty_footprint(member) == before
    # the same key is a replay of the first reversal, not a refusal
    again = await _reversed(api, flight["id"], "key-1")
    assert again["entry"] == first["entry"]
    assert await loyalty_footprint(member) == before


async def test_the_same_key_for_another_entry_is_a_conflict(api):
    member = await enroll(api)
    one = (await loyalty_fly(api, member, "E1"))["entry"]
    two = (await loyalty_fly(api, member, "E2"))["entry"]
    await _reversed(api, one["id"], "key-1")
    payload = await _refused(api, two["id"], "key-1")
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 3000


# ---- tiers ----------------------------------------------------------------------------------


async def test_reversing_the_flight_that_upgraded_returns_the_tier_with_a_reversal_event(api):
    member = await enroll(api)
    flight = await loyalty_fly(api, member, "UP-1", 14_000, "J")  # 42,000: SILVER
    assert flight["tierChange"]["toTier"] == "SILVER"
    payload = await _reversed(api, flight["entry"]["id"], as_=AIRLINE)
    assert payload["tierChange"] == {
        "cardNumber": member["cardNumber"], "fromTier": "SILVER", "toTier": "STANDARD", "validUntil": None,
    }
    assert payload["member"]["tier"] == "STANDARD"
    assert [(c["fromTier"], c["toTier"], c["reason"]) for c in await loyalty_history(api, member)] == [
        ("SILVER", "STANDARD", "REVERSAL"), ("STANDARD", "SILVER", "UPGRADE"),
    ]
    assert (await loyalty_miles(api, member))["tier"] == "STANDARD"


async def test_a_reversal_returns_gold_to_silver_when_silver_still_holds(api):
    member = await enroll(api)
    await loyalty_fly(api, member, "T1", 14_000, "J")  # 42,000: SILVER
    gold = await loyalty_fly(api, member, "T2", 13_000, "J")  # 39,000 + 25 % bonus; 81,000: GOLD
    assert gold["tierChange"]["toTier"] == "GOLD"
    payload = await _reversed(api, gold["entry"]["id"])
    assert (payload["tierChange"]["fromTier"], payload["tierChange"]["toTier"]) == ("GOLD", "SILVER")
    assert await loyalty_miles(api, member) == {"tier": "SILVER", "redeemableMiles": 42_000, "milesExpiringSoon": 0}


async def test_a_reversal_that_leaves_the_upgrade_standing_changes_no_tier(api):
    member = await enroll(api)
    await loyalty_fly(api, member, "S1", 14_000, "J")  # 42,000: SILVER
    small = (await loyalty_fly(api, member, "S2", 500, "Y"))["entry"]  # 550 + 137 bonus
    payload = await _reversed(api, small["id"])
    assert (payload["tierChange"], payload["member"]["tier"]) == (None, "SILVER")
    assert len(await loyalty_history(api, member)) == 1


# ---- balances -----------------------------------------------------------------------------


async def test_a_reversal_may_take_the_balance_below_zero_and_redemptions_wait(api):
    await loyalty_register_partner("HOTELCO")
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "NEG"))["entry"]
    assert data(await loyalty_redeem(api, member["id"], 3000, "spend"))["milesRedeem"]["userErrors"] == []
    await _reversed(api, flight["id"])
    assert (await loyalty_miles(api, member))["redeemableMiles"] == -3000
    await loyalty_assert_balanced(member)
    refused = data(await loyalty_redeem(api, member["id"], 1, "one"))["milesRedeem"]
    assert problems(refused) == [("INSUFFICIENT_MILES", ["input", "miles"])]
    day = loyalty_today(api) - timedelta(days=1)
    posted = data(await loyalty_partner_accrue(api, loyalty_partner_input(member, "p1", 4000, day), ("partner", "HOTELCO")))
    assert posted["partnerAccrue"]["userErrors"] == []
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 1000
    await loyalty_assert_balanced(member)
    assert data(await loyalty_redeem(api, member["id"], 1000, "two"))["milesRedeem"]["member"]["redeemableMiles"] == 0


async def test_an_admin_reverses_a_redemption_and_the_miles_come_back(api):
    member = await enroll(api)
    await loyalty_fly(api, member, "F")
    redemption = data(await loyalty_redeem(api, member["id"], 2000, "spend"))["milesRedeem"]["entry"]
    payload = await _reversed(api, redemption["id"], reason="voucher cancelled")
    assert (payload["entry"]["redeemableMiles"], payload["entry"]["reverses"]["kind"]) == (2000, "REDEMPTION")
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 3000
    await loyalty_assert_balanced(member)


async def test_an_entry_of_a_suspended_member_may_be_reversed(api):
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "SUSP"))["entry"]
    await set_status(api, member, "SUSPENDED")
    assert (await _reversed(api, flight["id"]))["entry"]["redeemableMiles"] == -3000


# ---- refusals and roles ----------------------------------------------------------------


@pytest.mark.parametrize("entry_id", ["999999", "abc"])
async def test_an_unknown_entry_is_not_found(api, entry_id):
    assert problems(await _refused(api, entry_id)) == [("NOT_FOUND", ["input", "entryId"])]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
async def test_a_reason_is_required(api, reason):
    member = await enroll(api)
    flight = (await loyalty_fly(api, member, "R"))["entry"]
    assert problems(await _refused(api, flight["id"], reason=reason)) == [("INVALID", ["input", "reason"])]
    assert (await loyalty_footprint(member))["entries"] == 1


async def test_the_airline_may_not_reverse_partner_entries_or_redemptions_but_an_admin_may(api):
    await loyalty_register_partner("HOTELCO")
    member = await enroll(api)
    await loyalty_fly(api, member, "F")
    day = loyalty_today(api) - timedelta(days=1)
    partner_entry = data(await loyalty_partner_accrue(
        api, loyalty_partner_input(member, "p1", 400, day), ("partner", "HOTELCO")))["partnerAccrue"]["entry"]
    redemption = data(await loyalty_redeem(api, member["id"], 100, "spend"))["milesRedeem"]["entry"]
    before = await loyalty_footprint(member)
    for entry in (partner_entry, redemption):
        result = await loyalty_reverse(api, entry["id"], f"k-{entry['id']}", AIRLINE)
        assert error_codes(result) == ["FORBIDDEN"]
    assert await loyalty_footprint(member) == before
    payload = await _reversed(api, partner_entry["id"], "admin-key", ADMIN)
    assert (payload["entry"]["source"], payload["entry"]["redeemableMiles"]) == ("ADMIN", -400)


@pytest.mark.parametrize("role", ["member", "partner", "office", "branch"])
async def test_other_roles_are_forbidden(api, role):
    await loyalty_register_partner("HOTELCO")
    member = await enroll(api, "PEK01")
    flight = (await loyalty_fly(api, member, "F"))["entry"]
    as_ = {"member": as_member(member), "partner": ("partner", "HOTELCO"), "office": ("office", "PEK01"),
           "branch": ("branch", "NCB")}[role]
    assert error_codes(await loyalty_reverse(api, flight["id"], "k", as_)) == ["FORBIDDEN"]
    assert (await loyalty_footprint(member))["entries"] == 1
