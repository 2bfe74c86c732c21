"""memberEnroll: card numbers, office by address, DUPLICATE, idempotency, validation."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from tests.api.conftest import ENROLL, USER_ERRORS, admin_view, enroll, enroll_payload, member_count, person, problems
from tests.api.conftest import set_status


def luhn_valid(digits: str) -> bool:
    """The standard Luhn check over a whole number, check digit last."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def test_luhn_helper_knows_the_textbook_number():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def _today(api):
    return datetime.now(api.settings.tz).date()


# ---- success ---------------------------------------------------------------------


async def test_enrolment_returns_an_active_standard_member_with_a_valid_card(api):
    input = person(
        familyName="王", givenName="小明", birthDate="1990-05-17", phone="+86 139 1234 5678",
        email="Xiaoming.Wang@Example.com",
        address={"country": "cn", "province": "Beijing", "city": "Beijing", "line": "1 Chang'an Ave", "postalCode": "100000"},
    )
    payload = await enroll_payload(api, input)
    assert payload["userErrors"] == []
    member = payload["member"]
    assert re.fullmatch(r"CA[0-9]{9}", member["cardNumber"])
    assert luhn_valid(member["cardNumber"][2:])
    assert (member["familyName"], member["givenName"]) == ("王", "小明")
    assert (member["status"], member["tier"]) == ("ACTIVE", "STANDARD")
    assert member["birthDate"] == "1990-05-17"
    assert member["phone"] == "+86 139 1234 5678"  # stored as given
    assert member["email"] == "Xiaoming.Wang@Example.com"
    assert member["address"] == {
        "country": "CN", "province": "Beijing", "city": "Beijing", "line": "1 Chang'an Ave", "postalCode": "100000",
    }
    assert member["office"] == {"code": "PEK01"}
    assert member["branch"] == {"code": "NCB"}
    assert member["regionHistory"] == [{"office": {"code": "PEK01"}, "reason": "enrolment"}]
    assert await admin_view(api, member) == member
    assert await member_count(api) == 1


async def test_names_are_stored_with_spacing_folded(api):
    member = await enroll(api, familyName="  van   der Berg ", givenName=" Anna  Maria")
    assert (member["familyName"], member["givenName"]) == ("van der Berg", "Anna Maria")


async def test_twenty_enrolments_get_twenty_distinct_valid_cards(api):
    cards = [(await enroll(api))["cardNumber"] for _ in range(20)]
    assert len(set(cards)) == 20
    assert all(re.fullmatch(r"CA[1-9][0-9]{8}", card) and luhn_valid(card[2:]) for card in cards)


async def test_phone_and_email_are_optional(api):
    first = await enroll(api, phone=None, email=None)
    second = await enroll(api, phone="", email="  ")
    assert (first["phone"], first["email"]) == (None, None)
    assert (second["phone"], second["email"]) == (None, None)
    assert await member_count(api) == 2


async def test_birth_date_today_is_accepted(api):
    today = _today(api).isoformat()
    assert (await enroll(api, birthDate=today))["birthDate"] == today


# ---- office by address (rows of members/data/regions.json) ------------------------

ADDRESS_CASES = {
    # CN, Hebei: the province rule says SJW01, Tangshan's city rule TVS01.
    "city rule beats its province rule": ({"country": "CN", "province": "Hebei", "city": "Tangshan"}, "TVS01", "NCB"),
    "city rule without a province": ({"country": "CN", "city": "Tangshan"}, "TVS01", "NCB"),
    "case and spacing do not matter": ({"country": "cn", "province": " HEBEI ", "city": "  tangshan"}, "TVS01", "NCB"),
    "province rule for a city without one": ({"country": "CN", "province": "Hebei", "city": "Baoding"}, "SJW01", "NCB"),
    "province rule in another branch": ({"country": "CN", "province": "Guangdong", "city": "Foshan"}, "CAN01", "SCB"),
    "city rule of a wrong province is not used": ({"country": "CN", "province": "Guangdong", "city": "Tangshan"}, "CAN01", "SCB"),
    # US: the country rule says NYC01, California LAX01, San Francisco SFO01.
    "US city": ({"country": "US", "province": "California", "city": "San Francisco"}, "SFO01", "INB"),
    "US province": ({"country": "US", "province": "California", "city": "San Diego"}, "LAX01", "INB"),
    "US country": ({"country": "US", "province": "Texas", "city": "Houston"}, "NYC01", "INB"),
    "country rule (JP)": ({"country": "JP", "city": "Sapporo"}, "TYO01", "INB"),
    "no rule for the country: the default office": ({"country": "NZ", "city": "Auckland"}, "PEK01", "NCB"),
    "a city of another country does not match": ({"country": "CN", "city": "Osaka"}, "PEK01", "NCB"),
}


@pytest.mark.parametrize("case", list(ADDRESS_CASES))
async def test_the_address_decides_the_office(api, case):
    address, office, branch = ADDRESS_CASES[case]
    member = await enroll(api, address=address)
    assert (member["office"]["code"], member["branch"]["code"]) == (office, branch)
    assert member["regionHistory"] == [{"office": {"code": office}, "reason": "enrolment"}]


@pytest.mark.parametrize("as_", [("office", "PVG01"), ("branch", "SCB"), ("airline",), ("admin",)])
async def test_the_address_decides_whoever_enrols(api, as_):
    enrolled = await enroll(api, "TVS01", as_=as_, fields="id cardNumber")
    assert (await admin_view(api, enrolled))["office"] == {"code": "TVS01"}


# ---- DUPLICATE ------------------------------------------------------------------


async def test_second_active_member_with_the_same_phone_is_duplicate(api):
    holder = await enroll(api, phone="+86 139 0000 0001")
    payload = await enroll_payload(api, person(phone="+86-139-0000-0001"))  # same digits, other punctuation
    assert payload["member"] is None
    assert problems(payload) == [("DUPLICATE", ["input", "phone"])]
    assert await member_count(api) == 1
    assert (await admin_view(api, holder))["phone"] == "+86 139 0000 0001"


async def test_second_active_member_with_the_same_email_in_other_case_is_duplicate(api):
    await enroll(api, email="li.na@example.com")
    payload = await enroll_payload(api, person(email="LI.NA@Example.COM"))
    assert problems(payload) == [("DUPLICATE", ["input", "email"])]
    assert await member_count(api) == 1


async def test_a_suspended_member_keeps_phone_and_email(api):
    holder = await enroll(api)
    await set_status(api, holder, "SUSPENDED")
    by_phone = await enroll_payload(api, person(phone=holder["phone"]))
    by_email = await enroll_payload(api, person(email=holder["email"]))
    assert [e["code"] for e in by_phone["userErrors"] + by_email["userErrors"]] == ["DUPLICATE", "DUPLICATE"]
    assert await member_count(api) == 1


async def test_a_closed_members_phone_and_email_may_enrol_again(api):
    closed = await enroll(api)
    await set_status(api, closed, "CLOSED")
    again = await enroll(api, phone=closed["phone"], email=closed["email"])
    assert again["id"] != closed["id"]
    assert again["cardNumber"] != closed["cardNumber"]
    assert (again["phone"], again["email"], again["status"]) == (closed["phone"], closed["email"], "ACTIVE")
    assert await member_count(api) == 2


# ---- idempotency ------------------------------------------------------------------


async def test_same_key_and_content_returns_the_first_member(api):
    input = person(idempotencyKey="enrol-0001")
    first = await enroll_payload(api, input)
    replay = await enroll_payload(api, input)
    assert first["userErrors"] == replay["userErrors"] == []
    assert replay["member"] == first["member"]
    assert await member_count(api) == 1


async def test_same_key_with_other_content_is_a_conflict(api):
    input = person(idempotencyKey="enrol-0002")
    first = (await enroll_payload(api, input))["member"]
    payload = await enroll_payload(api, {**input, "givenName": "Someone Else"})
    assert payload["member"] is None
    assert problems(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await member_count(api) == 1
    assert (await admin_view(api, first))["givenName"] == input["givenName"]


async def test_keys_belong_to_their_caller(api):
    mine = await enroll_payload(api, person(idempotencyKey="shared-key"), as_=("admin", None, "admin-1"))
    theirs = await enroll_payload(api, person(idempotencyKey="shared-key"), as_=("admin", None, "admin-2"))
    assert mine["userErrors"] == theirs["userErrors"] == []
    assert mine["member"]["id"] != theirs["member"]["id"]
    assert await member_count(api) == 2


async def test_a_refused_enrolment_does_not_use_up_its_key(api):
    holder = await enroll(api)
    refused = await enroll_payload(api, person(phone=holder["phone"], idempotencyKey="enrol-0003"))
    assert [e["code"] for e in refused["userErrors"]] == ["DUPLICATE"]
    accepted = await enroll_payload(api, person(idempotencyKey="enrol-0003"))
    assert accepted["userErrors"] == []
    assert await member_count(api) == 2


@pytest.mark.parametrize("key", ["", "   ", "k" * 129])
async def test_a_malformed_key_is_invalid(api, key):
    payload = await enroll_payload(api, person(idempotencyKey=key))
    assert problems(payload) == [("INVALID", ["input", "idempotencyKey"])]
    assert await member_count(api) == 0


# ---- validation: one clear error, nothing written ----------------------------------

INVALID_CASES = {
    "empty family name": ({"familyName": ""}, ["input", "familyName"]),
    "blank given name": ({"givenName": "   "}, ["input", "givenName"]),
    "family name over 64 characters": ({"familyName": "W" * 65}, ["input", "familyName"]),
    "three-letter country": ({"address": {"country": "CHN", "city": "Beijing"}}, ["input", "address", "country"]),
    "empty country": ({"address": {"country": "", "city": "Beijing"}}, ["input", "address", "country"]),
    "country with a digit": ({"address": {"country": "C1", "city": "Beijing"}}, ["input", "address", "country"]),
    "unassigned code XX": ({"address": {"country": "XX", "city": "Nowhere"}}, ["input", "address", "country"]),
    "blank city": ({"address": {"country": "CN", "city": "  "}}, ["input", "address", "city"]),
    "postal code over 16 characters": ({"address": {"country": "CN", "city": "Beijing", "postalCode": "1" * 17}}, ["input", "address", "postalCode"]),
    "address line over 200 characters": ({"address": {"country": "CN", "city": "Beijing", "line": "x" * 201}}, ["input", "address", "line"]),
    "email without @": ({"email": "not-an-email"}, ["input", "email"]),
    "email without a dot in the domain": ({"email": "a@localhost"}, ["input", "email"]),
    "phone with five digits": ({"phone": "12345"}, ["input", "phone"]),
    "phone with letters": ({"phone": "call me maybe"}, ["input", "phone"]),
    "birth date before 1900": ({"birthDate": "1899-12-31"}, ["input", "birthDate"]),
}


@pytest.mark.parametrize("case", list(INVALID_CASES))
async def test_invalid_input_is_refused_with_its_field(api, case):
    fields, field = INVALID_CASES[case]
    payload = await enroll_payload(api, person(**fields))
    assert payload["member"] is None
    assert problems(payload) == [("INVALID", field)]
    assert payload["userErrors"][0]["message"]
    assert await member_count(api) == 0


async def test_a_birth_date_in_the_future_is_invalid(api):
    tomorrow = (_today(api) + timedelta(days=1)).isoformat()
    payload = await enroll_payload(api, person(birthDate=tomorrow))
    assert problems(payload) == [("INVALID", ["input", "birthDate"])]
    assert await member_count(api) == 0


@pytest.mark.parametrize("birth_date", ["31/12/1990", "2026-13-01"])
async def test_a_malformed_date_is_reported_to_the_client_not_masked(api, birth_date):
    result = await api.gql(ENROLL % ("id", USER_ERRORS), {"input": person(birthDate=birth_date)}, as_=("admin",))
    assert result.get("data") is None
    assert "birthDate" in result["errors"][0]["message"]
    assert "Internal error" not in result["errors"][0]["message"]
    assert await member_count(api) == 0
