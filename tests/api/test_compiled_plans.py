"""Compiled plans (schema.plans): the member read and flightAccrue answered without
strawberry's execution, exactly as the ordinary path answers them, and every request a
plan cannot answer exactly left to the ordinary path (which then gives its errors)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from members.access_log import PersonalField
from members.models import MemberAccess
from schema.build import LoyaltySchema, build_schema
from tests.api.conftest import Api, as_member, data, enroll, error_codes, set_status, set_tier
from tests.api.loyalty_factories import loyalty_flight, loyalty_footprint, loyalty_register_partner, loyalty_today
from tests.statements import counted_statements

READ = "query($id: ID!) { member(id: $id) { id cardNumber familyName givenName tier redeemableMiles } }"
FULL = """query Full($id: ID!) { member(id: $id) { __typename id cardNumber familyName givenName tier status
  redeemableMiles enrolledAt birthDate phone email lifecycleStage valueSegment segmentsAsOf } }"""
ALIASED = "query($card: String!) { who: member(cardNumber: $card) { card: cardNumber tier } }"
ACCRUE = """mutation Accrue($input: FlightAccrueInput!) { flightAccrue(input: $input) {
  __typename entry { id kind redeemableMiles qualifyingMiles qualifyingSegments activityDate source externalRef }
  member { id cardNumber tier } tierChange { cardNumber fromTier toTier validUntil } userErrors { code field message } } }"""


@pytest.fixture
async def both(db):
    """The same database through two apps: compiled plans on (the default) and off."""
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(db, manage_orm=False)), base_url="http://t") as on,
        httpx.AsyncClient(transport=httpx.ASGITransport(
            app=create_app(replace(db, compiled_plans=False), manage_orm=False)), base_url="http://t") as off,
    ):
        yield Api(client=on, settings=db), Api(client=off, settings=db)


@pytest.fixture
def executions(monkeypatch):
    """How many operations strawberry executed (the plans execute none)."""
    count = {"n": 0}
    original = LoyaltySchema.execute

    async def counted(self, *args, **kwargs):
        count["n"] += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(LoyaltySchema, "execute", counted)
    return count


async def test_a_member_read_is_planned_and_answers_as_the_ordinary_path(both, executions):
    on, off = both
    member = await enroll(on)
    await set_tier(on, member, "GOLD")
    await loyalty_register_partner("PLANHOTEL")
    for query, variables, who in [
        (READ, {"id": member["id"]}, as_member(member)),
        (FULL, {"id": member["id"]}, as_member(member)),
        (FULL, {"id": member["id"]}, ("admin",)),
        (ALIASED, {"card": member["cardNumber"]}, ("partner", "PLANHOTEL")),
        (ALIASED, {"card": member["cardNumber"].lower()}, ("airline",)),
    ]:
        executions["n"] = 0
        planned = await on.gql(query, variables, as_=who)
        assert executions["n"] == 0, (query, who)
        assert planned == await off.gql(query, variables, as_=who)
        assert executions["n"] == 1
    assert data(planned)["who"] == {"card": member["cardNumber"], "tier": "GOLD"}


async def test_a_flight_accrual_is_planned_and_answers_as_the_ordinary_path(both, executions):
    on, off = both
    first, second = await enroll(on), await enroll(on)
    flight = loyalty_flight(loyalty_today(on))
    executions["n"] = 0
    planned = await on.gql(ACCRUE, {"input": {"cardNumber": first["cardNumber"], "externalRef": "PLAN-1", "flight": flight}},
                           as_=("airline",))
    assert executions["n"] == 0
    ordinary = await off.gql(ACCRUE, {"input": {"cardNumber": second["cardNumber"], "externalRef": "PLAN-2", "flight": flight}},
                             as_=("airline",))
    assert executions["n"] == 1

    def same_shape(result: dict, member: dict) -> dict:
        payload = data(result)["flightAccrue"]
        assert payload["member"]["id"] == member["id"] and payload["entry"]["externalRef"].startswith("PLAN-")
        return {**payload, "entry": {**payload["entry"], "id": None, "externalRef": None}, "member": {**payload["member"], "id": None, "cardNumber": None}}

    assert same_shape(planned, first) == same_shape(ordinary, second)
    assert data(planned)["flightAccrue"]["entry"]["redeemableMiles"] == 3000  # J class, 1,000 km
    # A replay by the plan returns the first posting, as the ordinary path does.
    again = await on.gql(ACCRUE, {"input": {"cardNumber": first["cardNumber"], "externalRef": "PLAN-1", "flight": flight}},
                         as_=("airline",))
    assert again == planned
    assert (await loyalty_footprint(first))["entries"] == 1


async def test_a_refusal_in_the_payload_is_the_ordinary_paths(both, executions):
    on, off = both
    member = await enroll(on)
    await set_status(on, member, "SUSPENDED")
    variables = {"input": {"cardNumber": member["cardNumber"], "externalRef": "PLAN-3", "flight": loyalty_flight(loyalty_today(on))}}
    executions["n"] = 0
    planned = await on.gql(ACCRUE, variables, as_=("airline",))
    assert executions["n"] == 0
    assert planned == await off.gql(ACCRUE, variables, as_=("airline",))
    payload = data(planned)["flightAccrue"]
    assert payload["entry"] is None and [e["code"] for e in payload["userErrors"]] == ["MEMBER_NOT_ACTIVE"]
    assert (await loyalty_footprint(member))["entries"] == 0


@pytest.mark.parametrize(("query", "variables", "who", "code"), [
    (READ, {"id": "MEMBER"}, None, "UNAUTHENTICATED"),  # no token
    (READ, {"id": "MEMBER"}, ("airline",), "FORBIDDEN"),  # the airline looks members up by card
    (FULL, {"id": "MEMBER"}, ("airline",), "FORBIDDEN"),  # the airline sees the card view only
    (READ, {"id": 12.5}, ("admin",), "GRAPHQL_VALIDATION"),  # a variable that does not coerce
    (ALIASED, {"card": "CA12345"}, ("admin",), "INVALID"),  # not a card number
])
async def test_what_a_plan_cannot_answer_the_ordinary_path_refuses(both, executions, query, variables, who, code):
    on, off = both
    member = await enroll(on)
    variables = {name: member["id"] if value == "MEMBER" else value for name, value in variables.items()}
    executions["n"] = 0
    planned = await on.gql(query, variables, as_=who)
    assert executions["n"] == 1  # the plan gave up; strawberry answered
    assert planned == await off.gql(query, variables, as_=who)
    assert error_codes(planned)[:1] == [code] or (code == "GRAPHQL_VALIDATION" and planned["errors"])


async def test_a_member_outside_the_scope_reads_as_null_by_the_plan(both, executions):
    on, off = both
    me, other = await enroll(on), await enroll(on)
    executions["n"] = 0
    planned = await on.gql(READ, {"id": other["id"]}, as_=as_member(me))
    assert executions["n"] == 0
    assert planned == await off.gql(READ, {"id": other["id"]}, as_=as_member(me)) == {"data": {"member": None}}


async def test_an_accrual_whose_selection_is_refused_posts_once_through_the_ordinary_path(both, executions):
    on, _ = both
    member = await enroll(on)
    # The airline may not read a member's balance: the plan gives up after posting, and
    # the ordinary path replays the posting (externalRef) and refuses the field.
    query = """mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) {
      entry { id } member { redeemableMiles } userErrors { code } } }"""
    variables = {"input": {"cardNumber": member["cardNumber"], "externalRef": "PLAN-4", "flight": loyalty_flight(loyalty_today(on))}}
    executions["n"] = 0
    result = await on.gql(query, variables, as_=("airline",))
    assert executions["n"] == 1
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await loyalty_footprint(member))["entries"] == 1


async def test_documents_without_a_plan_take_the_ordinary_path(both, executions):
    on, _ = both
    member = await enroll(on)
    for query in [
        "query($id: ID!) { member(id: $id) { id office { code } } }",  # a field with its own resolver
        "query($id: ID!) { member(id: $id) { id ...F } } fragment F on Member { tier }",  # a fragment
        "query($id: ID!, $x: Boolean!) { member(id: $id) { id tier @include(if: $x) } }",  # a directive
        "query($id: ID!) { member(id: $id) { id } me { id } }",  # two root fields
    ]:
        executions["n"] = 0
        result = await on.gql(query, {"id": member["id"], "x": True}, as_=("admin",) if "me" not in query else as_member(member))
        assert executions["n"] == 1, query
        assert data(result)["member"]["id"] == member["id"]


def test_the_setting_turns_plans_off():
    from api.settings import load_settings

    assert load_settings(environ={}, dotenv=None).compiled_plans is True
    assert load_settings(environ={"LOYALTY_COMPILED_PLANS": "0"}, dotenv=None).compiled_plans is False


async def test_a_value_the_schema_cannot_serialise_is_the_ordinary_paths_error(both, executions):
    # A balance past 32 bits (3,000,000,000: a big partner credit) in redeemableMiles (Int!):
    # graphql-core's serialiser refuses it; the plan gives up instead of failing the request
    # (it was an HTTP 500 with no body), and the ordinary path answers as without plans.
    from members.models import Member

    on, off = both
    member = await enroll(on)
    await Member.filter(id=int(member["id"])).update(redeemable_miles=3_000_000_000)
    planned = await on.gql(READ, {"id": member["id"]}, as_=("admin",))
    assert planned == await off.gql(READ, {"id": member["id"]}, as_=("admin",))
    assert planned["data"] == {"member": None} and len(planned["errors"]) == 1, planned


def test_an_input_object_is_converted_as_strawberry_converts_it():
    # The plan's own conversion of an input object (schema.plans._input_converter) gives
    # what strawberry's convert_argument gives: nested inputs, omitted optional fields
    # (their defaults), explicit nulls; an input it does not compile (an enum field) is
    # left to convert_argument.
    from datetime import date

    from strawberry.types.arguments import convert_argument

    from schema.build import build_schema
    from schema.loyalty import FlightAccrueInput, PartnerAccrueInput, TierOverrideInput
    from schema.plans import _input_converter

    schema = build_schema()
    registry, config = schema.schema_converter.scalar_registry, schema.config
    flight = {"carrier": "CA", "flightNumber": "1501", "date": date(2026, 3, 1), "origin": "PEK",
              "destination": "SHA", "distanceKm": 1000, "fareClass": "J"}
    cases = [
        (FlightAccrueInput, {"cardNumber": "CA000000001", "externalRef": "R-1", "flight": flight}),
        (PartnerAccrueInput, {"cardNumber": "CA000000001", "familyName": "Wang", "miles": 5,
                              "activityDate": date(2026, 3, 1), "externalRef": "P-1"}),
        (PartnerAccrueInput, {"cardNumber": "CA000000001", "familyName": "Wang", "miles": 5,
                              "activityDate": date(2026, 3, 1), "externalRef": "P-1", "description": None}),
        (PartnerAccrueInput, {"cardNumber": "CA000000001", "familyName": "Wang", "miles": 5,
                              "activityDate": date(2026, 3, 1), "externalRef": "P-1", "description": "a stay"}),
    ]
    for input_type, value in cases:
        compiled = _input_converter(input_type, registry, config)
        assert compiled is not None, input_type
        assert compiled(value) == convert_argument(value, input_type, registry, config, path=("input",)), value
    assert _input_converter(TierOverrideInput, registry, config) is None  # its tier is an enum


@pytest.mark.parametrize("change", [
    lambda given: given["flight"].update(distanceKm="1000"),  # a string for an Int
    lambda given: given["flight"].update(distanceKm=2**31),  # past 32 bits
    lambda given: given["flight"].update(date="2026-02-30"),  # not a date
    lambda given: given["flight"].update(seat="12A"),  # a field the input does not have
    lambda given: given.pop("externalRef"),  # a required field missing
    lambda given: given.update(flight=None),  # null for a non-null input
])
async def test_an_accrual_whose_input_does_not_coerce_is_the_ordinary_paths_error(both, executions, change):
    # The plan takes flightAccrue's input from its variable by graphql-core's
    # coerce_input_value (schema.plans.direct_binder); whatever does not coerce goes
    # through get_variable_values and then the ordinary path, with its own error.
    on, off = both
    member = await enroll(on)
    given = {"cardNumber": member["cardNumber"], "externalRef": "PLAN-C", "flight": loyalty_flight(loyalty_today(on))}
    change(given)
    executions["n"] = 0
    planned = await on.gql(ACCRUE, {"input": given}, as_=("airline",))
    assert executions["n"] == 1
    assert planned == await off.gql(ACCRUE, {"input": given}, as_=("airline",))
    assert planned["errors"] and (await loyalty_footprint(member))["entries"] == 0


# ---- the member read's columns (issue 12): the plan reads only what its selection needs --

WIDE = """query($id: ID!) { member(id: $id) { id cardNumber tier familyName givenName status redeemableMiles enrolledAt
  birthDate phone email address { country province city line postalCode } consents { greetings marketing updatedAt }
  erasedAt lifecycleStage valueSegment segmentsAsOf } }"""


@pytest.fixture
async def both_apps(db):
    """Plans on and off, each Api with its app (its access audit: `api.app.state.access_log`)."""
    apps = create_app(db, manage_orm=False), create_app(replace(db, compiled_plans=False), manage_orm=False)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[0]), base_url="http://t") as on,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=apps[1]), base_url="http://t") as off,
    ):
        pair = Api(client=on, settings=db), Api(client=off, settings=db)
        for api, app in zip(pair, apps):
            api.app = app
        yield pair


def test_a_member_reads_plan_names_the_columns_of_its_selection():
    documents = build_schema().documents
    assert documents.plan(READ).row_columns == ("family_name", "given_name", "redeemable_miles")
    assert documents.plan(ALIASED).row_columns == ()  # the card view: the base columns only
    assert set(documents.plan(WIDE).row_columns) >= {"phone_cipher", "email_cipher", "birth_date", "address_city"}
    accrue = documents.plan(ACCRUE)
    assert accrue is not None and accrue.row_columns is None  # flightAccrue's plan is not a member read


async def test_a_planned_member_read_selects_only_its_columns(both, executions):
    on, off = both
    member = await enroll(on)
    token = on.token("member", None, member["id"])
    await on.gql(READ, {"id": member["id"]}, token=token)  # the token's first use checks its member
    executions["n"] = 0
    with counted_statements() as planned:
        read = await on.gql(READ, {"id": member["id"]}, token=token)
    assert executions["n"] == 0 and data(read)["member"]["familyName"] == "Wang"
    [select] = [sql for sql in planned if 'FROM "member"' in sql]
    for column in ("id", "card_number", "tier", "office_id", "branch_id", "family_name", "given_name", "redeemable_miles"):
        assert f'"{column}"' in select
    assert '"phone_cipher"' not in select and '"enrolled_at"' not in select
    with counted_statements() as ordinary:
        assert await off.gql(READ, {"id": member["id"]}, as_=as_member(member)) == read
    assert any('"phone_cipher"' in sql for sql in ordinary)  # the ordinary path reads the whole row


async def test_every_member_field_the_plan_reads_answers_as_the_ordinary_path_and_is_audited(both_apps, executions):
    on, off = both_apps
    member = await enroll(on, birthDate="1980-02-29")
    await set_tier(on, member, "SILVER")
    await on.app.state.access_log.flush()
    seen = {row.id for row in await MemberAccess.filter(member_id=int(member["id"]))}  # the enrolment's
    for who in [as_member(member), ("admin",), ("office", "PEK01")]:
        executions["n"] = 0
        planned = await on.gql(WIDE, {"id": member["id"]}, as_=who)
        assert executions["n"] == 0, who
        assert planned == await off.gql(WIDE, {"id": member["id"]}, as_=who), who
        assert data(planned)["member"]["phone"] == member["phone"]
    # Staff reads of the personal fields are audited by the plan as by the ordinary path
    # (each app's own audit, written to the one table: the plan's first).
    for api in (on, off):
        await api.app.state.access_log.flush()
        rows = await MemberAccess.filter(member_id=int(member["id"])).exclude(id__in=list(seen)).order_by("id")
        seen |= {row.id for row in rows}
        api.audited = [(row.actor, row.field_bits) for row in rows]
    assert on.audited == off.audited and [actor for actor, _ in on.audited] == ["admin:admin-test", "office:office-test@PEK01"]
    assert {bits for _, bits in on.audited} == {
        PersonalField.BIRTH_DATE | PersonalField.PHONE | PersonalField.EMAIL | PersonalField.ADDRESS
    }


async def test_a_field_reading_more_than_its_columns_leaves_the_read_to_the_ordinary_path(both, executions, monkeypatch):
    from members import services

    on, off = both
    member = await enroll(on)
    opened = services.member_phone
    monkeypatch.setattr(services, "member_phone", lambda row: opened(row) + row.address_city)  # a column not said
    query = "query($id: ID!) { member(id: $id) { id phone } }"
    executions["n"] = 0
    planned = await on.gql(query, {"id": member["id"]}, as_=("admin",))
    assert executions["n"] == 1  # the plan gave up on the partial row; strawberry answered with the whole row
    assert planned == await off.gql(query, {"id": member["id"]}, as_=("admin",))
    assert data(planned)["member"]["phone"].startswith(member["phone"])


OPTIONAL = "query($id: ID, $card: String) { member(id: $id, cardNumber: $card) { id cardNumber } }"


@pytest.mark.parametrize(("query", "variables", "planned"), [
    (READ, {"id": "MEMBER"}, True),
    (READ, {"id": "MEMBER_INT"}, True),  # an ID given as a number: the string the ordinary path makes of it
    (READ, {"id": "MEMBER", "unused": [1]}, True),  # variables the document does not declare are ignored
    (OPTIONAL, {"card": "CARD"}, True),  # id absent: the resolver's default
    (OPTIONAL, {"id": None, "card": "CARD"}, True),  # id null
    (READ, {}, False),  # a required variable not given
    (READ, {"id": None}, False),  # null for ID!
    (READ, {"id": True}, False),  # not an ID
    (OPTIONAL, {"card": 5}, False),  # not a String
])
async def test_the_member_reads_variables_bind_as_graphql_core_coerces_them(both, executions, query, variables, planned):
    on, off = both
    member = await enroll(on)
    stand_ins = {"MEMBER": member["id"], "MEMBER_INT": int(member["id"]), "CARD": member["cardNumber"]}
    variables = {name: stand_ins.get(value, value) if isinstance(value, str) else value for name, value in variables.items()}
    executions["n"] = 0
    answer = await on.gql(query, variables, as_=("admin",))
    assert executions["n"] == (0 if planned else 1)
    assert answer == await off.gql(query, variables, as_=("admin",))
    if planned:
        assert data(answer)["member"]["id"] == member["id"]


def test_a_plan_whose_arguments_are_variables_binds_them_directly():
    # One mechanism (schema.plans.direct_binder) for the member read's scalars and
    # flightAccrue's input object; a literal argument is left to graphql-core.
    documents = build_schema().documents
    assert documents.plan(READ).direct is not None and documents.plan(OPTIONAL).direct is not None
    assert documents.plan(ACCRUE).direct is not None
    assert documents.plan('{ member(id: "5") { id } }').direct is None  # a literal: graphql-core's
