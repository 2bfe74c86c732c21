"""The statements of the two hottest requests (issue 12), counted over HTTP so that
they cannot creep back: a flightAccrue of a SILVER member (the member's UPDATE, which on
SQLite also returns the window's totals for the upgrade decision, the FLIGHT and
TIER_BONUS entries in one INSERT, their lots: 3 statements on SQLite, 2 on PostgreSQL)
and a member's read of itself by id with a token already seen (the token's member check
is cached until the token expires)."""

from __future__ import annotations

from tests.api.conftest import as_member, data, enroll, set_tier
from tests.api.loyalty_factories import loyalty_flight, loyalty_footprint, loyalty_today
from tests.statements import counted_statements, is_postgres

# What an airline's system asks back of an accrual.
FLIGHT_ACCRUE = """mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) {
  entry { id redeemableMiles qualifyingMiles } member { id cardNumber tier } tierChange { toTier }
  userErrors { code message } } }"""
MEMBER_READ = "query($id: ID!) { member(id: $id) { id cardNumber familyName givenName tier redeemableMiles } }"


async def _accrue(api, member: dict, ref: str, flight: dict) -> dict:
    variables = {"input": {"cardNumber": member["cardNumber"], "externalRef": ref, "flight": flight}}
    return data(await api.gql(FLIGHT_ACCRUE, variables, as_=("airline",)))["flightAccrue"]


async def test_a_silver_flight_accrual_runs_at_most_three_statements(api):
    member = await enroll(api)
    await set_tier(api, member, "SILVER")
    flight = loyalty_flight(loyalty_today(api))
    with counted_statements() as statements:
        payload = await _accrue(api, member, "HOT-1", flight)
    assert payload["userErrors"] == [] and payload["member"]["tier"] == "SILVER"
    # PostgreSQL: the member's UPDATE, then the entries, lots and window totals in one.
    # SQLite: the UPDATE with the window totals, the entries, the lots.
    assert len(statements) <= (2 if is_postgres() else 3), "\n".join(statements)
    footprint = await loyalty_footprint(member)
    assert (footprint["entries"], footprint["lots"], footprint["events"]) == (2, 2, 1)  # the bonus; the override
    assert footprint["balance"] > payload["entry"]["redeemableMiles"]


async def test_a_standard_flight_accrual_runs_at_most_three_statements(api):
    member = await enroll(api)
    with counted_statements() as statements:
        payload = await _accrue(api, member, "HOT-2", loyalty_flight(loyalty_today(api)))
    assert payload["userErrors"] == []
    assert len(statements) <= (2 if is_postgres() else 3), "\n".join(statements)


async def test_a_replayed_flight_accrual_writes_nothing_and_answers_the_first_result(api):
    member = await enroll(api)
    flight = loyalty_flight(loyalty_today(api))
    first = await _accrue(api, member, "HOT-3", flight)
    again = await _accrue(api, member, "HOT-3", flight)
    assert again["entry"]["id"] == first["entry"]["id"]
    assert again["member"] == first["member"]
    miles = data(await api.gql(MEMBER_READ, {"id": member["id"]}, as_=as_member(member)))["member"]["redeemableMiles"]
    assert miles == first["entry"]["redeemableMiles"]  # the replay's balance change was rolled back
    footprint = await loyalty_footprint(member)
    assert (footprint["entries"], footprint["lots"]) == (1, 1)


async def test_a_member_reads_itself_in_one_statement(api):
    member = await enroll(api)
    token = api.token("member", None, member["id"])
    await api.gql(MEMBER_READ, {"id": member["id"]}, token=token)  # the token's first use checks its member
    with counted_statements() as statements:
        read = data(await api.gql(MEMBER_READ, {"id": member["id"]}, token=token))["member"]
    assert read["cardNumber"] == member["cardNumber"]
    assert len(statements) <= 1, "\n".join(statements)
