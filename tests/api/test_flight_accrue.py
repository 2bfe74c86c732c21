"""flightAccrue: miles and segments by the fare chart, the tier bonus, upgrades at once
(tiers may be skipped), validation, the claims window, externalRef replays, roles; a
refusal writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from members.cards import card_number
from tests.api.conftest import as_member, data, enroll, error_codes, problems, set_status, set_tier
from tests.api.loyalty_factories import (
    ADMIN, loyalty_flight, loyalty_flight_accrue, loyalty_fly, loyalty_footprint, loyalty_history, loyalty_miles,
    loyalty_months_back, loyalty_today, loyalty_valid_until,
)


async def _refused(api, member: dict, ref: str, flight: dict, as_: tuple = ("airline",)) -> dict:
    """The payload of a flight that must be refused."""
    payload = data(await loyalty_flight_accrue(api, member["cardNumber"], ref, flight, as_))["flightAccrue"]
    assert (payload["entry"], payload["member"], payload["tierChange"]) == (None, None, None)
    return payload


def _yesterday(api):
    return loyalty_today(api) - timedelta(days=1)


# ---- earning ------------------------------------------------------------------------


async def test_1000_km_in_j_earns_3000_miles_and_3_segments(api):
    member = await enroll(api)
    day = _yesterday(api)
    payload = await loyalty_fly(api, member, "CA1501-1", 1000, "J", day)
    entry = payload["entry"]
    assert entry["kind"] == "FLIGHT"
    assert (entry["qualifyingMiles"], entry["qualifyingSegments"], entry["redeemableMiles"]) == (3000, 3.0, 3000)
    assert (entry["source"], entry["externalRef"], entry["activityDate"]) == ("AIRLINE", "CA1501-1", day.isoformat())
    assert entry["flight"] == {
        "carrier": "CA", "flightNumber": "1501", "date": day.isoformat(), "origin": "PEK", "destination": "SHA",
        "distanceKm": 1000, "fareClass": "J",
    }
    assert (entry["bonus"], entry["bonusFor"], entry["reversedBy"]) == (None, None, None)  # STANDARD earns 0 % bonus
    assert payload["member"] == {"id": member["id"], "cardNumber": member["cardNumber"], "tier": "STANDARD"}
    assert payload["tierChange"] is None
    assert await loyalty_miles(api, member) == {"tier": "STANDARD", "redeemableMiles": 3000, "milesExpiringSoon": 0}
    footprint = await loyalty_footprint(member)
    assert (footprint["entries"], footprint["lots"], footprint["events"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("distance", "fare_class", "miles", "segments"),
    [
        (1000, "H", 750, 0.75),  # 75 %
        (1088, "Y", 1196, 1.1),  # 110 %, rounded down from 1,196.8
        (300, "Y", 550, 1.1),  # shorter than 500 km earns as 500 km
        (500, "C", 1000, 2.0),
        (1000, "L", 250, 0.25),
        (2000, "I", 0, 0.0),  # a valid class that earns nothing: posted with 0
    ],
)
async def test_the_fare_chart(api, distance, fare_class, miles, segments):
    member = await enroll(api)
    entry = (await loyalty_fly(api, member, "REF", distance, fare_class))["entry"]
    assert (entry["qualifyingMiles"], entry["qualifyingSegments"], entry["redeemableMiles"]) == (miles, segments, miles)
    assert (await loyalty_miles(api, member))["redeemableMiles"] == miles


async def test_a_silver_member_earns_a_25_percent_bonus_entry_linked_to_the_flight(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    day = _yesterday(api)
    entry = (await loyalty_fly(api, member, "B1", 1000, "J", day))["entry"]
    bonus = entry["bonus"]
    assert bonus["kind"] == "TIER_BONUS"
    assert (bonus["redeemableMiles"], bonus["qualifyingMiles"], bonus["activityDate"]) == (750, 0, day.isoformat())
    assert bonus["bonusFor"] == {"id": entry["id"]}
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 3750
    ledger = data(await api.gql(
        "query($id: ID) { member(id: $id) { ledger { edges { node { kind redeemableMiles bonusFor { id } } } } } }",
        {"id": member["id"]}, as_=ADMIN,
    ))["member"]["ledger"]["edges"]
    assert [e["node"] for e in ledger] == [
        {"kind": "TIER_BONUS", "redeemableMiles": 750, "bonusFor": {"id": entry["id"]}},
        {"kind": "FLIGHT", "redeemableMiles": 3000, "bonusFor": None},
    ]


@pytest.mark.parametrize(("tier", "bonus"), [("GOLD", 900), ("PLATINUM", 1500)])
async def test_bonus_percent_by_tier(api, tier, bonus):
    member = await enroll(api)
    await set_tier(api, member, tier)
    entry = (await loyalty_fly(api, member, "B1", 1000, "J"))["entry"]
    assert entry["bonus"]["redeemableMiles"] == bonus


# ---- upgrades ---------------------------------------------------------------------------


async def test_the_flight_that_reaches_40000_miles_upgrades_to_silver_at_once(api):
    member = await enroll(api)
    day = _yesterday(api)
    payload = await loyalty_fly(api, member, "LONG-1", 14_000, "J", day)  # 42,000 miles
    until = loyalty_valid_until(day).isoformat()
    assert payload["tierChange"] == {
        "cardNumber": member["cardNumber"], "fromTier": "STANDARD", "toTier": "SILVER", "validUntil": until,
    }
    assert await loyalty_history(api, member) == [
        {"fromTier": "STANDARD", "toTier": "SILVER", "reason": "UPGRADE", "validUntil": until},
    ]
    assert payload["member"]["tier"] == "SILVER"
    assert payload["entry"]["bonus"] is None  # the upgrading flight earns the old tier's (STANDARD) 0 %
    status = data(await api.gql(
        "query($id: ID) { member(id: $id) { tier tierStatus { tier since validUntil qualifyingMiles } } }",
        {"id": member["id"]}, as_=ADMIN,
    ))["member"]
    assert status == {
        "tier": "SILVER",
        "tierStatus": {"tier": "SILVER", "since": day.isoformat(), "validUntil": loyalty_valid_until(day).isoformat(),
                       "qualifyingMiles": 42_000},
    }


async def test_39999_miles_do_not_upgrade_and_the_next_flight_does(api):
    member = await enroll(api)
    first = await loyalty_fly(api, member, "F1", 13_333, "J")  # 39,999 miles
    assert (first["entry"]["qualifyingMiles"], first["tierChange"], first["member"]["tier"]) == (39_999, None, "STANDARD")
    second = await loyalty_fly(api, member, "F2", 1, "Y")  # 550 miles: 40,549
    assert (second["tierChange"]["fromTier"], second["tierChange"]["toTier"]) == ("STANDARD", "SILVER")


async def test_25_segments_upgrade_to_silver_on_the_segments_route(api):
    member = await enroll(api)
    for n in range(8):  # 8 J tickets of 500 km: 24 segments, 12,000 miles
        assert (await loyalty_fly(api, member, f"S{n}", 500, "J"))["tierChange"] is None
    payload = await loyalty_fly(api, member, "S8", 500, "B")  # +1 segment: 25
    assert payload["tierChange"]["toTier"] == "SILVER"
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 12_500


async def test_silver_to_gold_earns_the_silver_bonus_on_the_upgrading_flight(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    first = await loyalty_fly(api, member, "G1", 13_000, "J")  # 39,000 miles + 9,750 bonus
    assert (first["tierChange"], first["entry"]["bonus"]["redeemableMiles"]) == (None, 9_750)
    second = await loyalty_fly(api, member, "G2", 13_667, "J")  # 41,001: 80,001 in the window
    assert (second["tierChange"]["fromTier"], second["tierChange"]["toTier"]) == ("SILVER", "GOLD")
    assert second["entry"]["bonus"]["redeemableMiles"] == 10_250  # 25 % (SILVER), not 30 % (GOLD)
    assert await loyalty_miles(api, member) == {
        "tier": "GOLD", "redeemableMiles": 39_000 + 9_750 + 41_001 + 10_250, "milesExpiringSoon": 0,
    }


async def test_a_member_may_skip_from_standard_straight_to_gold(api):
    member = await enroll(api)
    assert (await loyalty_fly(api, member, "K1", 13_000, "J"))["tierChange"] is None  # 39,000
    payload = await loyalty_fly(api, member, "K2", 13_667, "J")  # 80,001
    assert (payload["tierChange"]["fromTier"], payload["tierChange"]["toTier"]) == ("STANDARD", "GOLD")
    assert [(c["fromTier"], c["toTier"], c["reason"]) for c in await loyalty_history(api, member)] == [
        ("STANDARD", "GOLD", "UPGRADE"),
    ]


async def test_meeting_the_current_tier_again_does_not_extend_validity(api):
    member = await enroll(api)
    upgraded_on = loyalty_months_back(loyalty_today(api), 3)
    await loyalty_fly(api, member, "V1", 14_000, "J", upgraded_on)  # SILVER, valid 24 months from that month
    again = await loyalty_fly(api, member, "V2", 14_000, "Y")  # 57,400 miles yesterday: SILVER again, not GOLD
    assert again["tierChange"] is None
    status = data(await api.gql("query($id: ID) { member(id: $id) { tierStatus { tier since validUntil } } }",
                                {"id": member["id"]}, as_=ADMIN))["member"]["tierStatus"]
    assert status == {"tier": "SILVER", "since": upgraded_on.isoformat(),
                      "validUntil": loyalty_valid_until(upgraded_on).isoformat()}
    assert len(await loyalty_history(api, member)) == 1


# ---- refusals ---------------------------------------------------------------------------


async def test_an_unknown_card_is_not_found_and_a_bad_check_digit_is_invalid(api):
    nobody = {"cardNumber": card_number(1)}
    payload = await _refused(api, nobody, "N1", loyalty_flight(_yesterday(api)))
    assert problems(payload) == [("NOT_FOUND", ["input", "cardNumber"])]
    member = await enroll(api)
    wrong = member["cardNumber"][:-1] + str((int(member["cardNumber"][-1]) + 1) % 10)
    payload = await _refused(api, {"cardNumber": wrong}, "N2", loyalty_flight(_yesterday(api)))
    assert problems(payload) == [("INVALID", ["input", "cardNumber"])]
    assert (await loyalty_footprint(member))["entries"] == 0


@pytest.mark.parametrize("status", ["SUSPENDED", "CLOSED"])
async def test_no_accrual_for_a_suspended_or_closed_member_and_the_ref_stays_unused(api, status):
    member = await enroll(api)
    await set_status(api, member, status)
    before = await loyalty_footprint(member)
    payload = await _refused(api, member, "ST-1", loyalty_flight(_yesterday(api)))
    assert problems(payload) == [("MEMBER_NOT_ACTIVE", ["input", "cardNumber"])]
    assert await loyalty_footprint(member) == before
    await set_status(api, member, "ACTIVE", reason="cleared")
    posted = await loyalty_fly(api, member, "ST-1")  # the refused request did not use the ref up
    assert posted["entry"]["redeemableMiles"] == 3000


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fareClass": "F"}, "fareClass"),  # not in the chart
        ({"fareClass": "y"}, "fareClass"),  # classes are case-sensitive
        ({"fareClass": ""}, "fareClass"),
        ({"distanceKm": 0}, "distanceKm"),
        ({"distanceKm": -500}, "distanceKm"),
        ({"distanceKm": 20_001}, "distanceKm"),
        ({"carrier": "C"}, "carrier"),
        ({"flightNumber": "15011"}, "flightNumber"),
        ({"origin": "PE1"}, "origin"),
        ({"destination": "PEK"}, "destination"),  # same as the origin
    ],
)
async def test_an_invalid_flight_is_refused_naming_the_field(api, changes, field):
    member = await enroll(api)
    payload = await _refused(api, member, "BAD-1", loyalty_flight(_yesterday(api), **changes))
    assert problems(payload) == [("INVALID", ["input", "flight", field])]
    footprint = await loyalty_footprint(member)
    assert (footprint["entries"], footprint["lots"], footprint["balance"]) == (0, 0, 0)


async def test_the_claims_window_runs_from_six_months_back_to_today(api):
    member = await enroll(api)
    today = loyalty_today(api)
    earliest = loyalty_months_back(today, 6)
    for ref, day in (("W1", today + timedelta(days=1)), ("W2", earliest - timedelta(days=1))):
        payload = await _refused(api, member, ref, loyalty_flight(day))
        assert problems(payload) == [("INVALID", ["input", "flight", "date"])]
    assert (await loyalty_footprint(member))["entries"] == 0
    assert (await loyalty_fly(api, member, "W3", day=earliest))["entry"]["activityDate"] == earliest.isoformat()
    assert (await loyalty_fly(api, member, "W4", day=today))["entry"]["activityDate"] == today.isoformat()
    assert (await loyalty_miles(api, member))["redeemableMiles"] == 6000


@pytest.mark.parametrize("ref", ["", "   ", "x" * 101])
async def test_an_external_ref_is_1_to_100_characters(api, ref):
    member = await enroll(api)
    payload = await _refused(api, member, ref, loyalty_flight(_yesterday(api)))
    assert problems(payload) == [("INVALID", ["input", "externalRef"])]


# ---- externalRef ----------------------------------------------------------------------


async def test_a_replay_returns_the_original_entry_and_tier_change_and_writes_nothing(api):
    member = await enroll(api)
    flight = loyalty_flight(_yesterday(api), 14_000, "J")
    first = data(await loyalty_flight_accrue(api, member["cardNumber"], "R-1", flight))["flightAccrue"]
    assert first["tierChange"]["toTier"] == "SILVER"
    before = await loyalty_footprint(member)
    again = data(await loyalty_flight_accrue(api, member["cardNumber"], "R-1", flight))["flightAccrue"]
    assert again == first
    assert await loyalty_footprint(member) == before
    assert (before["entries"], before["balance"]) == (1, 42_000)


async def test_a_replay_after_a_suspension_still_returns_the_original(api):
    member = await enroll(api)
    flight = loyalty_flight(_yesterday(api))
    first = data(await loyalty_flight_accrue(api, member["cardNumber"], "R-2", flight))["flightAccrue"]
    await set_status(api, member, "SUSPENDED")
    again = data(await loyalty_flight_accrue(api, member["cardNumber"], "R-2", flight))["flightAccrue"]
    assert (again["entry"]["id"], again["userErrors"]) == (first["entry"]["id"], [])


@pytest.mark.parametrize("changes", [{"fareClass": "Y"}, {"distanceKm": 1001}, {"flightNumber": "1502"}])
async def test_the_same_ref_with_other_content_is_an_idempotency_conflict(api, changes):
    member = await enroll(api)
    day = _yesterday(api)
    await loyalty_fly(api, member, "C-1", day=day)
    before = await loyalty_footprint(member)
    payload = await _refused(api, member, "C-1", loyalty_flight(day, **changes))
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "externalRef"])]
    assert await loyalty_footprint(member) == before


async def test_the_same_ref_for_another_member_is_a_conflict(api):
    first, second = await enroll(api), await enroll(api)
    flight = loyalty_flight(_yesterday(api))
    await loyalty_fly(api, first, "C-2")
    payload = await _refused(api, second, "C-2", flight)
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "externalRef"])]
    assert (await loyalty_footprint(second))["entries"] == 0


async def test_normalised_input_replays(api):
    """Lower-case codes are normalised before the fingerprint: the same flight."""
    member = await enroll(api)
    day = _yesterday(api)
    first = await loyalty_fly(api, member, "N-1", day=day)
    lower = loyalty_flight(day, carrier="ca", origin="pek", destination="sha")
    again = data(await loyalty_flight_accrue(api, member["cardNumber"].lower(), "N-1", lower))["flightAccrue"]
    assert (again["entry"]["id"], again["userErrors"]) == (first["entry"]["id"], [])


# ---- roles -------------------------------------------------------------------------------


async def test_an_admin_may_credit_a_flight_too(api):
    member = await enroll(api)
    payload = await loyalty_fly(api, member, "ADM-1", as_=ADMIN)
    assert (payload["entry"]["source"], payload["entry"]["redeemableMiles"]) == ("AIRLINE", 3000)


@pytest.mark.parametrize("role", ["member", "partner", "office", "branch"])
async def test_other_roles_are_forbidden_and_nothing_is_written(api, role):
    from tests.api.loyalty_factories import loyalty_register_partner

    await loyalty_register_partner("HOTELCO")
    member = await enroll(api, "PEK01")
    as_ = {"member": as_member(member), "partner": ("partner", "HOTELCO"), "office": ("office", "PEK01"),
           "branch": ("branch", "NCB")}[role]
    result = await loyalty_flight_accrue(api, member["cardNumber"], "F-1", loyalty_flight(_yesterday(api)), as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert result["data"] is None
    assert (await loyalty_footprint(member))["entries"] == 0


async def test_without_a_token_it_is_unauthenticated(api):
    member = await enroll(api)
    result = await api.gql(
        "mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) { entry { id } } }",
        {"input": {"cardNumber": member["cardNumber"], "externalRef": "U-1", "flight": loyalty_flight(_yesterday(api))}},
    )
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert (await loyalty_footprint(member))["entries"] == 0


async def test_the_airline_sees_card_names_and_tier_of_the_member_only(api):
    member = await enroll(api)
    result = await loyalty_flight_accrue(api, member["cardNumber"], "P-1", loyalty_flight(_yesterday(api)))
    assert data(result)["flightAccrue"]["member"]["tier"] == "STANDARD"
    result = await api.gql(
        "mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) { member { redeemableMiles } } }",
        {"input": {"cardNumber": member["cardNumber"], "externalRef": "P-1", "flight": loyalty_flight(_yesterday(api))}},
        as_=("airline",),
    )
    assert error_codes(result) == ["FORBIDDEN"]
