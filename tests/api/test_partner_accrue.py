"""partnerAccrue: a registered, active partner posts redeemable miles only, under its own
code; the family name guards the card; externalRef is unique per partner; roles."""

from __future__ import annotations

from datetime import timedelta

import pytest

from members.cards import card_number
from members.partners import disable_partner
from tests.api.conftest import as_member, data, enroll, error_codes, problems, set_status, set_tier
from tests.api.loyalty_factories import (
    ADMIN, loyalty_footprint, loyalty_history, loyalty_miles, loyalty_months_back, loyalty_partner_accrue,
    loyalty_partner_input, loyalty_register_partner, loyalty_today,
)

HOTEL = ("partner", "HOTELCO")
BANK = ("partner", "BANK88")


@pytest.fixture
async def partners(db):
    await loyalty_register_partner("HOTELCO", "Hotel Co")
    await loyalty_register_partner("BANK88", "Bank 88")


def _day(api):
    return loyalty_today(api) - timedelta(days=3)


async def _accrue(api, input: dict, as_: tuple = HOTEL) -> dict:
    return data(await loyalty_partner_accrue(api, input, as_))["partnerAccrue"]


async def _posted(api, input: dict, as_: tuple = HOTEL) -> dict:
    payload = await _accrue(api, input, as_)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["entry"]


async def _refused(api, input: dict, as_: tuple = HOTEL) -> dict:
    payload = await _accrue(api, input, as_)
    assert payload["entry"] is None
    return payload


# ---- success ------------------------------------------------------------------------


async def test_a_partner_posts_redeemable_miles_under_its_own_code(api, partners):
    member = await enroll(api)
    day = _day(api)
    entry = await _posted(api, loyalty_partner_input(member, "stay-1001", 500, day))
    assert {k: entry[k] for k in ("kind", "source", "externalRef", "activityDate", "description")} == {
        "kind": "PARTNER", "source": "HOTELCO", "externalRef": "stay-1001", "activityDate": day.isoformat(),
        "description": "2 nights, Hotel Co Beijing",
    }
    assert (entry["redeemableMiles"], entry["qualifyingMiles"], entry["qualifyingSegments"]) == (500, 0, 0.0)
    assert (entry["flight"], entry["bonus"]) == (None, None)
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 500, "milesExpiringSoon": 0}


async def test_partner_miles_never_qualify_nor_earn_a_bonus(api, partners):
    member = await enroll(api)
    await set_tier(api, member, "GOLD")
    entry = await _posted(api, loyalty_partner_input(member, "big-1", 200_000, _day(api)))
    assert (entry["redeemableMiles"], entry["qualifyingMiles"], entry["bonus"]) == (200_000, 0, None)
    status = data(await api.gql(
        "query($id: ID) { member(id: $id) { tier redeemableMiles tierStatus { qualifyingMiles qualifyingSegments } } }",
        {"id": member["id"]}, as_=ADMIN,
    ))["member"]
    assert status == {"tier": "GOLD", "redeemableMiles": 200_000,
                      "tierStatus": {"qualifyingMiles": 0, "qualifyingSegments": 0.0}}
    assert [c["reason"] for c in await loyalty_history(api, member)] == ["MANUAL"]  # no UPGRADE from partner miles


async def test_a_standard_member_is_not_upgraded_by_partner_miles(api, partners):
    member = await enroll(api)
    await _posted(api, loyalty_partner_input(member, "big-2", 500_000, _day(api)))
    assert (await loyalty_miles(api, member))["tier"] == "STANDARD"
    assert await loyalty_history(api, member) == []


@pytest.mark.parametrize("family", ["wang", "WANG", "ＷＡＮＧ", " Wa ng "])
async def test_the_family_name_matches_ignoring_case_width_and_spaces(api, partners, family):
    member = await enroll(api, familyName="Wang")
    entry = await _posted(api, loyalty_partner_input(member, "name-1", 100, _day(api), familyName=family))
    assert entry["redeemableMiles"] == 100


async def test_a_chinese_family_name_matches_exactly(api, partners):
    member = await enroll(api, familyName="王", givenName="小明")
    assert (await _posted(api, loyalty_partner_input(member, "cn-1", 100, _day(api))))["redeemableMiles"] == 100
    payload = await _refused(api, loyalty_partner_input(member, "cn-2", 100, _day(api), familyName="汪"))
    assert problems(payload) == [("NAME_MISMATCH", ["input", "familyName"])]


async def test_an_admin_posts_under_source_admin(api, partners):
    member = await enroll(api)
    entry = await _posted(api, loyalty_partner_input(member, "goodwill-1", 1000, _day(api)), ADMIN)
    assert (entry["kind"], entry["source"], entry["redeemableMiles"]) == ("PARTNER", "ADMIN", 1000)


# ---- refusals -----------------------------------------------------------------------------


async def test_a_name_mismatch_writes_nothing(api, partners):
    member = await enroll(api, familyName="Wang")
    before = await loyalty_footprint(member)
    payload = await _refused(api, loyalty_partner_input(member, "mm-1", 500, _day(api), familyName="Li"))
    assert problems(payload) == [("NAME_MISMATCH", ["input", "familyName"])]
    assert await loyalty_footprint(member) == before
    # the refused request did not use the ref up
    assert (await _posted(api, loyalty_partner_input(member, "mm-1", 500, _day(api))))["redeemableMiles"] == 500


async def test_an_unknown_card_is_not_found(api, partners):
    payload = await _refused(api, loyalty_partner_input({"cardNumber": card_number(2), "familyName": "Wang"}, "x", 5, _day(api)))
    assert problems(payload) == [("NOT_FOUND", ["input", "cardNumber"])]


@pytest.mark.parametrize("status", ["SUSPENDED", "CLOSED"])
async def test_no_accrual_for_a_member_who_is_not_active(api, partners, status):
    member = await enroll(api)
    await set_status(api, member, status)
    before = await loyalty_footprint(member)
    payload = await _refused(api, loyalty_partner_input(member, "na-1", 500, _day(api)))
    assert problems(payload) == [("MEMBER_NOT_ACTIVE", ["input", "cardNumber"])]
    assert await loyalty_footprint(member) == before


@pytest.mark.parametrize("miles", [0, -100, 1_000_001])
async def test_miles_are_1_to_a_million(api, partners, miles):
    member = await enroll(api)
    payload = await _refused(api, loyalty_partner_input(member, "m-1", miles, _day(api)))
    assert problems(payload) == [("INVALID", ["input", "miles"])]
    assert (await loyalty_footprint(member))["entries"] == 0


async def test_the_claims_window_applies(api, partners):
    member = await enroll(api)
    today = loyalty_today(api)
    for ref, day in (("cw-1", today + timedelta(days=1)), ("cw-2", loyalty_months_back(today, 6) - timedelta(days=1))):
        payload = await _refused(api, loyalty_partner_input(member, ref, 100, day))
        assert problems(payload) == [("INVALID", ["input", "activityDate"])]
    assert (await loyalty_footprint(member))["entries"] == 0


# ---- externalRef ------------------------------------------------------------------------


async def test_a_replay_returns_the_original_entry(api, partners):
    member = await enroll(api)
    input = loyalty_partner_input(member, "stay-7", 800, _day(api))
    first = await _posted(api, input)
    before = await loyalty_footprint(member)
    assert await _posted(api, input) == first
    assert await loyalty_footprint(member) == before
    assert before["balance"] == 800


@pytest.mark.parametrize("field", ["miles", "description", "activityDate", "cardNumber"])
async def test_the_same_ref_with_other_content_is_a_conflict(api, partners, field):
    member, other = await enroll(api), await enroll(api)
    day = _day(api)
    input = loyalty_partner_input(member, "stay-8", 800, day)
    await _posted(api, input)
    before = await loyalty_footprint(member)
    changed = {"miles": 801, "description": "3 nights", "activityDate": (day - timedelta(days=1)).isoformat(),
               "cardNumber": other["cardNumber"]}[field]
    payload = await _refused(api, {**input, field: changed})
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "externalRef"])]
    assert await loyalty_footprint(member) == before
    assert (await loyalty_footprint(other))["entries"] == 0


async def test_external_refs_are_unique_per_partner(api, partners):
    """Two partners may use the same reference: each is its own source."""
    member = await enroll(api)
    input = loyalty_partner_input(member, "ref-1", 300, _day(api))
    hotel = await _posted(api, input, HOTEL)
    bank = await _posted(api, input, BANK)
    assert hotel["id"] != bank["id"]
    assert (hotel["source"], bank["source"]) == ("HOTELCO", "BANK88")
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 600
    # and neither partner can reach the other's posting: another content under BANK88 conflicts only with BANK88's
    payload = await _refused(api, {**input, "miles": 301}, BANK)
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "externalRef"])]


# ---- partner registry and roles -----------------------------------------------------------


@pytest.mark.parametrize("scope", ["NOSUCH", "hotelco"])
async def test_a_token_of_an_unregistered_partner_is_forbidden(api, partners, scope):
    """NOSUCH was never registered; codes are upper case, so hotelco is not HOTELCO."""
    member = await enroll(api)
    result = await loyalty_partner_accrue(api, loyalty_partner_input(member, "u-1", 100, _day(api)), ("partner", scope))
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await loyalty_footprint(member))["entries"] == 0


async def test_a_disabled_partner_is_forbidden_from_then_on(api, partners):
    member = await enroll(api)
    await _posted(api, loyalty_partner_input(member, "d-1", 100, _day(api)))
    await disable_partner("HOTELCO")
    result = await loyalty_partner_accrue(api, loyalty_partner_input(member, "d-2", 100, _day(api)), HOTEL)
    assert error_codes(result) == ["FORBIDDEN"]
    # even a replay of what it posted before
    result = await loyalty_partner_accrue(api, loyalty_partner_input(member, "d-1", 100, _day(api)), HOTEL)
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await loyalty_footprint(member))["entries"] == 1
    # the other partner is not affected
    assert (await _posted(api, loyalty_partner_input(member, "d-2", 100, _day(api)), BANK))["source"] == "BANK88"


@pytest.mark.parametrize("role", ["airline", "office", "branch", "member"])
async def test_other_roles_are_forbidden(api, partners, role):
    member = await enroll(api, "PEK01")
    as_ = {"airline": ("airline",), "office": ("office", "PEK01"), "branch": ("branch", "NCB"),
           "member": as_member(member)}[role]
    result = await loyalty_partner_accrue(api, loyalty_partner_input(member, "r-1", 100, _day(api)), as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await loyalty_footprint(member))["entries"] == 0
