"""Reads of miles and tiers: tierStatus, tierRules, the tierChanges event log (paging by
cursor, scoped like members), Member.ledger, Member.tierHistory, milesExpiringSoon."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from members.partners import disable_partner
from tests.api.conftest import as_member, data, enroll, error_codes, set_tier
from tests.api.loyalty_factories import (
    ADMIN, loyalty_fly, loyalty_miles, loyalty_months_back, loyalty_old_credit, loyalty_override,
    loyalty_register_partner, loyalty_today,
)

STATUS = """query($id: ID) { member(id: $id) { tier tierStatus { tier since validUntil qualifyingMiles
  qualifyingSegments nextTier milesToNextTier segmentsToNextTier atRiskOfDowngrade } } }"""

CHANGES = """query($after: String, $first: Int, $office: String, $branch: String) {
  tierChanges(after: $after, first: $first, officeCode: $office, branchCode: $branch) {
    edges { cursor node { cursor cardNumber fromTier toTier %s } } pageInfo { hasNextPage endCursor } } }"""
STAFF_FIELDS = "reason officeCode branchCode member { id }"

LEDGER = """query($id: ID, $first: Int, $after: String, $kinds: [LedgerEntryKind!]) { member(id: $id) {
  ledger(first: $first, after: $after, kinds: $kinds) { edges { cursor node { kind externalRef redeemableMiles } }
  pageInfo { hasNextPage endCursor } } } }"""

HISTORY = """query($id: ID, $first: Int, $after: String) { member(id: $id) {
  tierHistory(first: $first, after: $after) { edges { node { fromTier toTier reason } }
  pageInfo { hasNextPage endCursor } } } }"""


async def _status(api, member: dict, as_: tuple = ADMIN) -> dict:
    return data(await api.gql(STATUS, {"id": member["id"]}, as_=as_))["member"]["tierStatus"]


# ---- tierStatus ------------------------------------------------------------------------


async def test_tier_status_of_a_standard_member_counts_the_window_and_the_gap(api):
    member = await enroll(api)
    await loyalty_fly(api, member, "F1", 10_000, "J")  # 30,000 miles, 3 segments
    await loyalty_fly(api, member, "F2", 1_000, "H")  # 750 miles, 0.75 segments
    today = loyalty_today(api)
    status = await _status(api, member)
    assert status == {
        "tier": "STANDARD", "since": status["since"], "validUntil": None,
        "qualifyingMiles": 30_750, "qualifyingSegments": 3.75,
        "nextTier": "SILVER", "milesToNextTier": 9_250, "segmentsToNextTier": 21.25, "atRiskOfDowngrade": False,
    }
    assert today - timedelta(days=1) <= date.fromisoformat(status["since"]) <= today  # enrolled today


async def test_tier_status_counts_only_the_12_months_ending_this_month(api):
    """Credits older than the window (posted as of their day) do not count."""
    member = await enroll(api)
    today = loyalty_today(api)
    await loyalty_fly(api, member, "IN", 1000, "J")  # 3,000 in the window
    from loyalty.ledger import FlightDetails, flight_accrue
    from loyalty.rules import load_rules
    from members.access import Caller, Role

    old_day = loyalty_months_back(today, 12).replace(day=1) - timedelta(days=1)  # last day before the window
    old = FlightDetails("CA", "1", old_day, "PEK", "SHA", 1000, "J")
    await flight_accrue(Caller(Role.AIRLINE, "t"), member["cardNumber"], old, "OUT", rules=load_rules(), today=old_day)
    status = await _status(api, member)
    assert (status["qualifyingMiles"], status["qualifyingSegments"]) == (3000, 3.0)
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 6000


async def test_at_platinum_there_is_no_next_tier(api):
    member = await enroll(api)
    await set_tier(api, member, "PLATINUM")
    status = await _status(api, member)
    assert (status["nextTier"], status["milesToNextTier"], status["segmentsToNextTier"]) == (None, None, None)


async def test_a_gap_already_met_on_one_route_is_zero(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    for n in range(14):  # 14 x 3 = 42 segments of 500 km J: 21,000 miles, over GOLD's 40 segments
        await loyalty_fly(api, member, f"S{n}", 500, "J")
    status = await _status(api, member)
    assert (status["tier"], status["qualifyingSegments"]) == ("GOLD", 42.0)  # upgraded on segments
    assert (status["nextTier"], status["milesToNextTier"], status["segmentsToNextTier"]) == ("PLATINUM", 139_000, 48.0)


async def test_at_risk_when_the_tier_ends_within_6_months_below_the_retain_threshold(api):
    at_risk, safe_by_miles, safe_by_date = await enroll(api), await enroll(api), await enroll(api)
    soon = loyalty_today(api) + timedelta(days=60)
    for member in (at_risk, safe_by_miles):
        assert data(await loyalty_override(api, member, "SILVER", soon))["tierOverride"]["userErrors"] == []
    await set_tier(api, safe_by_date, "SILVER")  # valid 24 months
    await loyalty_fly(api, safe_by_miles, "KEEP", 11_667, "J")  # 35,001 miles: SILVER's 35,000 retain
    assert (await _status(api, at_risk))["atRiskOfDowngrade"] is True
    assert (await _status(api, safe_by_miles))["atRiskOfDowngrade"] is False
    assert (await _status(api, safe_by_date))["atRiskOfDowngrade"] is False
    listed = data(await api.gql(
        "{ members(filter: { atRiskOfDowngrade: true }) { totalCount edges { node { id } } } }", as_=ADMIN))["members"]
    assert (listed["totalCount"], [e["node"]["id"] for e in listed["edges"]]) == (1, [at_risk["id"]])


async def test_a_member_reads_their_own_status_but_not_anothers(api):
    me, other = await enroll(api), await enroll(api)
    await loyalty_fly(api, me, "M1")
    mine = data(await api.gql("{ me { tierStatus { qualifyingMiles } redeemableMiles } }", as_=as_member(me)))["me"]
    assert mine == {"tierStatus": {"qualifyingMiles": 3000}, "redeemableMiles": 3000}
    assert data(await api.gql(STATUS, {"id": other["id"]}, as_=as_member(me)))["member"] is None


async def test_a_partner_sees_the_tier_but_not_the_status(api):
    await loyalty_register_partner("HOTELCO")
    member = await enroll(api)
    result = await api.gql("query($c: String) { member(cardNumber: $c) { tier tierStatus { qualifyingMiles } } }",
                           {"c": member["cardNumber"]}, as_=("partner", "HOTELCO"))
    assert error_codes(result) == ["FORBIDDEN"]


# ---- tierRules -------------------------------------------------------------------------


async def test_tier_rules_are_the_rules_in_force(api):
    member = await enroll(api)
    rules = data(await api.gql("""{ tierRules { windowMonths rules { tier upgradeMiles upgradeSegments retainMiles
        retainSegments validityMonths bonusPercent } } }""", as_=as_member(member)))["tierRules"]
    assert rules["windowMonths"] == 12
    assert [tuple(r.values()) for r in rules["rules"]] == [
        ("STANDARD", 0, 0.0, 0, 0.0, 0, 0),
        ("SILVER", 40_000, 25.0, 35_000, 23.0, 24, 25),
        ("GOLD", 80_000, 40.0, 70_000, 36.0, 24, 30),
        ("PLATINUM", 160_000, 90.0, 145_000, 80.0, 24, 50),
    ]


async def test_tier_rules_need_a_token(api):
    assert error_codes(await api.gql("{ tierRules { windowMonths } }")) == ["UNAUTHENTICATED"]


# ---- tierChanges ---------------------------------------------------------------------


@pytest.fixture
async def changes(api) -> dict:
    """Five tier changes, oldest first: Wang (PEK01, NCB) SILVER, Li (TVS01, NCB) GOLD,
    Zhang (PVG01, ECB) PLATINUM, Wang GOLD, Zhang SILVER."""
    people = {
        "Wang": await enroll(api, "PEK01", familyName="Wang"),
        "Li": await enroll(api, "TVS01", familyName="Li"),
        "Zhang": await enroll(api, "PVG01", familyName="Zhang"),
    }
    for name, tier in (("Wang", "SILVER"), ("Li", "GOLD"), ("Zhang", "PLATINUM"), ("Wang", "GOLD"), ("Zhang", "SILVER")):
        assert data(await loyalty_override(api, people[name], tier))["tierOverride"]["userErrors"] == []
    return people


def _names(people: dict, edges: list[dict]) -> list[tuple[str, str]]:
    by_card = {m["cardNumber"]: name for name, m in people.items()}
    return [(by_card[e["node"]["cardNumber"]], e["node"]["toTier"]) for e in edges]


async def _changes(api, as_: tuple = ADMIN, fields: str = STAFF_FIELDS, **variables) -> dict:
    return data(await api.gql(CHANGES % fields, variables, as_=as_))["tierChanges"]


async def test_tier_changes_page_oldest_first_by_cursor(api, changes):
    first = await _changes(api, first=2)
    assert _names(changes, first["edges"]) == [("Wang", "SILVER"), ("Li", "GOLD")]
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": first["edges"][-1]["cursor"]}
    assert all(e["cursor"] == e["node"]["cursor"] for e in first["edges"])
    second = await _changes(api, first=2, after=first["pageInfo"]["endCursor"])
    assert _names(changes, second["edges"]) == [("Zhang", "PLATINUM"), ("Wang", "GOLD")]
    third = await _changes(api, first=2, after=second["pageInfo"]["endCursor"])
    assert _names(changes, third["edges"]) == [("Zhang", "SILVER")]
    assert third["pageInfo"]["hasNextPage"] is False
    node = third["edges"][0]["node"]
    assert (node["fromTier"], node["reason"], node["officeCode"], node["branchCode"]) == ("PLATINUM", "MANUAL", "PVG01", "ECB")
    assert node["member"] == {"id": changes["Zhang"]["id"]}
    # resuming from the last cursor gets exactly what happened since
    last = third["pageInfo"]["endCursor"]
    assert (await _changes(api, after=last))["edges"] == []
    await loyalty_override(api, changes["Li"], "PLATINUM")
    assert _names(changes, (await _changes(api, after=last))["edges"]) == [("Li", "PLATINUM")]


async def test_tier_changes_default_to_everything_visible(api, changes):
    assert len((await _changes(api))["edges"]) == 5


@pytest.mark.parametrize(
    ("as_", "variables", "expected"),
    [
        (("office", "PEK01"), {}, [("Wang", "SILVER"), ("Wang", "GOLD")]),
        (("branch", "NCB"), {}, [("Wang", "SILVER"), ("Li", "GOLD"), ("Wang", "GOLD")]),
        (("branch", "NCB"), {"office": "TVS01"}, [("Li", "GOLD")]),
        (("branch", "ECB"), {}, [("Zhang", "PLATINUM"), ("Zhang", "SILVER")]),
        (ADMIN, {"office": "PVG01"}, [("Zhang", "PLATINUM"), ("Zhang", "SILVER")]),
        (ADMIN, {"branch": "NCB"}, [("Wang", "SILVER"), ("Li", "GOLD"), ("Wang", "GOLD")]),
    ],
)
async def test_tier_changes_are_scoped_like_members(api, changes, as_, variables, expected):
    assert _names(changes, (await _changes(api, as_, **variables))["edges"]) == expected


async def test_a_member_sees_only_their_own_changes(api, changes):
    result = await _changes(api, as_member(changes["Li"]))
    assert _names(changes, result["edges"]) == [("Li", "GOLD")]


@pytest.mark.parametrize(
    ("as_", "variables"),
    [
        (("office", "PEK01"), {"office": "PVG01"}),  # another office
        (("office", "PEK01"), {"branch": "NCB"}),  # wider than the office
        (("branch", "NCB"), {"office": "PVG01"}),  # an office of another branch
        (("branch", "NCB"), {"branch": "ECB"}),
    ],
)
async def test_a_region_outside_the_scope_is_forbidden(api, changes, as_, variables):
    assert error_codes(await api.gql(CHANGES % STAFF_FIELDS, variables, as_=as_)) == ["FORBIDDEN"]


async def test_a_partner_sees_cards_tiers_and_dates_only(api, changes):
    await loyalty_register_partner("HOTELCO")
    partner = ("partner", "HOTELCO")
    result = await _changes(api, partner, fields="validUntil effectiveAt")
    assert len(result["edges"]) == 5
    for field in ("member { id }", "officeCode", "reason"):
        assert error_codes(await api.gql(CHANGES % field, {}, as_=partner))[0] == "FORBIDDEN"
    await disable_partner("HOTELCO")
    assert error_codes(await api.gql(CHANGES % "validUntil", {}, as_=partner)) == ["FORBIDDEN"]


@pytest.mark.parametrize("variables", [{"after": "garbage"}, {"first": 101}, {"first": -1}])
async def test_a_bad_cursor_or_page_size_is_invalid(api, changes, variables):
    assert error_codes(await api.gql(CHANGES % "validUntil", variables, as_=ADMIN)) == ["INVALID"]


async def test_a_ledger_cursor_is_not_a_tier_changes_cursor(api, changes):
    await loyalty_fly(api, changes["Wang"], "F1")
    ledger = data(await api.gql(LEDGER, {"id": changes["Wang"]["id"]}, as_=ADMIN))["member"]["ledger"]
    result = await api.gql(CHANGES % "validUntil", {"after": ledger["pageInfo"]["endCursor"]}, as_=ADMIN)
    assert error_codes(result) == ["INVALID"]


# ---- Member.ledger and Member.tierHistory -------------------------------------------


async def test_the_ledger_pages_newest_first_and_filters_by_kind(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    for n in range(3):
        await loyalty_fly(api, member, f"L{n}")  # FLIGHT 3,000 + TIER_BONUS 750 each
    pages, after = [], None
    while True:
        page = data(await api.gql(LEDGER, {"id": member["id"], "first": 4, "after": after}, as_=ADMIN))["member"]["ledger"]
        pages.append([(e["node"]["kind"], e["node"]["externalRef"]) for e in page["edges"]])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == [
        [("TIER_BONUS", None), ("FLIGHT", "L2"), ("TIER_BONUS", None), ("FLIGHT", "L1")],
        [("TIER_BONUS", None), ("FLIGHT", "L0")],
    ]
    flights = data(await api.gql(LEDGER, {"id": member["id"], "kinds": ["FLIGHT"]}, as_=ADMIN))["member"]["ledger"]
    assert [e["node"]["externalRef"] for e in flights["edges"]] == ["L2", "L1", "L0"]
    bonuses = data(await api.gql(LEDGER, {"id": member["id"], "kinds": ["TIER_BONUS"]}, as_=ADMIN))["member"]["ledger"]
    assert [e["node"]["redeemableMiles"] for e in bonuses["edges"]] == [750, 750, 750]
    none = data(await api.gql(LEDGER, {"id": member["id"], "kinds": []}, as_=ADMIN))["member"]["ledger"]
    assert none["edges"] == []


async def test_the_ledger_is_read_by_the_member_and_their_office_only(api):
    member = await enroll(api, "PEK01")
    await loyalty_fly(api, member, "O1")
    for as_ in (as_member(member), ("office", "PEK01"), ("branch", "NCB")):
        ledger = data(await api.gql(LEDGER, {"id": member["id"]}, as_=as_))["member"]["ledger"]
        assert [e["node"]["externalRef"] for e in ledger["edges"]] == ["O1"]
    other = await enroll(api, "PEK01")
    for as_ in (("office", "PVG01"), ("branch", "ECB"), as_member(other)):
        assert data(await api.gql(LEDGER, {"id": member["id"]}, as_=as_))["member"] is None
    result = await api.gql("query($c: String) { member(cardNumber: $c) { ledger { edges { cursor } } } }",
                           {"c": member["cardNumber"]}, as_=("airline",))
    assert error_codes(result) == ["FORBIDDEN"]


async def test_tier_history_pages_newest_first(api):
    member = await enroll(api)
    for tier in ("SILVER", "GOLD", "PLATINUM"):
        await set_tier(api, member, tier)
    first = data(await api.gql(HISTORY, {"id": member["id"], "first": 2}, as_=ADMIN))["member"]["tierHistory"]
    assert [(e["node"]["fromTier"], e["node"]["toTier"]) for e in first["edges"]] == [("GOLD", "PLATINUM"), ("SILVER", "GOLD")]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = data(await api.gql(HISTORY, {"id": member["id"], "after": first["pageInfo"]["endCursor"]}, as_=ADMIN))
    history = rest["member"]["tierHistory"]
    assert [(e["node"]["fromTier"], e["node"]["toTier"], e["node"]["reason"]) for e in history["edges"]] == [
        ("STANDARD", "SILVER", "MANUAL"),
    ]
    assert history["pageInfo"]["hasNextPage"] is False


# ---- milesExpiringSoon -------------------------------------------------------------------


async def test_miles_expiring_soon_counts_credits_ending_within_90_days(api):
    member = await enroll(api)
    today = loyalty_today(api)
    await loyalty_fly(api, member, "NEW")  # 3,000, good for 36 months
    await loyalty_old_credit(member, 2000, loyalty_months_back(today, 36), "OLD-1")  # ends this month
    await loyalty_old_credit(member, 1000, loyalty_months_back(today, 32), "OLD-2")  # ends in 4 months: > 90 days
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 6000, "milesExpiringSoon": 2000}
    me = data(await api.gql("{ me { milesExpiringSoon } }", as_=as_member(member)))["me"]
    assert me == {"milesExpiringSoon": 2000}


async def test_a_reversed_credit_no_longer_counts_as_expiring(api):
    member = await enroll(api)
    credit = await loyalty_old_credit(member, 2000, loyalty_months_back(loyalty_today(api), 36), "OLD-1")
    # reversing the credit leaves its lot empty: nothing is left to expire
    result = data(await api.gql(
        "mutation($i: LedgerEntryReverseInput!) { ledgerEntryReverse(input: $i) { userErrors { code } } }",
        {"i": {"entryId": str(credit), "reason": "posted twice", "idempotencyKey": "k"}}, as_=ADMIN))
    assert result["ledgerEntryReverse"]["userErrors"] == []
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 0, "milesExpiringSoon": 0}
