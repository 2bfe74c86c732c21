"""Bad inputs found by trying the API as an attacker would: each is refused with INVALID,
NOT_FOUND, FORBIDDEN, UNAUTHENTICATED or a userError, never "Internal error." or HTTP
500, and writes nothing. On SQLite and PostgreSQL (where most of them used to fail:
over-long codes, ids past 32 bits, NUL bytes)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace

import jwt
import pytest

from api.auth import ALGORITHMS, MAX_LIFETIME_SECONDS
from members.models import Member
from tests.api.conftest import USER_ERRORS, as_member, data, enroll, error_codes, person, problems, set_tier
from tests.api.loyalty_factories import (
    ADMIN, loyalty_fly, loyalty_footprint, loyalty_partner_accrue, loyalty_partner_input, loyalty_register_partner,
    loyalty_reverse, loyalty_today,
)

pytestmark = pytest.mark.db

LONG_CODE = "PEK01" * 10  # 50 characters; office and branch codes are 8
HUGE_IDS = [str(2**31), str(2**63), str(2**64 + 1), "-1", "1e3", "٣"]  # past 32 bits, past 64, not digits


def internal(result: dict) -> bool:
    return any(error.get("message") == "Internal error." for error in result.get("errors") or [])


def token(api, **claims) -> str:
    now = int(time.time())
    payload = {"sub": "admin-test", "role": "admin", "iat": now, "exp": now + 600, "iss": api.settings.jwt_issuer,
               "aud": api.settings.jwt_audience}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, api.settings.require_secret(), algorithm=ALGORITHMS[0])


# ---- codes longer than their column -------------------------------------------------


@pytest.mark.parametrize("query, code", [
    ("{ members(filter: {officeCode: \"%s\"}) { edges { node { id } } } }", "INVALID"),
    ("{ members(filter: {branchCode: \"%s\"}) { edges { node { id } } } }", "INVALID"),
    ("{ tierCounts(officeCode: \"%s\") { gold } }", "INVALID"),
    ("{ tierChanges(branchCode: \"%s\") { edges { cursor } } }", "INVALID"),
    ("{ careCallsDue(officeCode: \"%s\") { totalCount } }", "INVALID"),
    ("{ regionStats(branchCode: \"%s\") { vips } }", "INVALID"),
    ("{ officeStats(branchCode: \"%s\") { officeCode } }", "INVALID"),
    ("{ feedback(filter: {officeCode: \"%s\"}) { edges { cursor } } }", "INVALID"),
])
async def test_over_long_region_codes_are_unknown_codes(api, query, code):
    result = await api.gql(query % LONG_CODE, as_=ADMIN)
    assert error_codes(result) == [code], result
    office = await api.gql(query % LONG_CODE, as_=("office", "PEK01"))
    assert error_codes(office) == ["FORBIDDEN"], office


async def test_over_long_office_code_reads_as_no_office(api):
    assert data(await api.gql('{ office(code: "%s") { code } }' % LONG_CODE, as_=ADMIN)) == {"office": None}


async def test_region_assign_to_an_over_long_office_code_is_not_found(api):
    member = await enroll(api)
    mutation = """mutation($input: MemberRegionAssignInput!) { memberRegionAssign(input: $input) { member { id } %s } }""" % USER_ERRORS
    result = await api.gql(mutation, {"input": {"memberId": member["id"], "officeCode": LONG_CODE, "reason": "move"}}, as_=ADMIN)
    assert problems(data(result)["memberRegionAssign"]) == [("NOT_FOUND", ["input", "officeCode"])]


@pytest.mark.parametrize("role, scope", [("office", "PEK0123456789"), ("branch", "NCBNCBNCBNCBN"), ("partner", "HOTELCO123456")])
async def test_token_scope_longer_than_any_code_is_unauthenticated(api, role, scope):
    result = await api.gql("{ branches { code } }", token=token(api, role=role, scope=scope, sub=f"{role}-1"))
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert "scope" in result["errors"][0]["message"]


@pytest.mark.parametrize("role, scope", [("office", "PEK012345"), ("branch", "NCBNCBNCB")])
async def test_token_scope_longer_than_its_column_is_forbidden(api, role, scope):
    # 9 characters: a scope claim may have 12 (partner codes), an office or branch code 8.
    result = await api.gql("{ branches { code } }", token=token(api, role=role, scope=scope, sub=f"{role}-1"))
    assert error_codes(result) == ["FORBIDDEN"]


async def test_office_scope_that_fits_no_office_is_forbidden(api):
    result = await api.gql("{ branches { code } }", token=token(api, role="office", scope="ZZZ99", sub="o-1"))
    assert error_codes(result) == ["FORBIDDEN"]


# ---- ids past the columns -----------------------------------------------------------


@pytest.mark.parametrize("value", HUGE_IDS)
async def test_huge_member_ids_read_as_no_member(api, value):
    assert data(await api.gql("query($id: ID) { member(id: $id) { id } }", {"id": value}, as_=ADMIN)) == {"member": None}


MUTATIONS_BY_MEMBER_ID = {
    "milesRedeem": ("MilesRedeemInput", {"miles": 100, "description": "voucher", "idempotencyKey": "k1"}, "entry { id }"),
    "careCallLog": ("CareCallLogInput", {"outcome": "REACHED", "idempotencyKey": "k2"}, "careCall { id }"),
    "tierOverride": ("TierOverrideInput", {"tier": "GOLD", "reason": "goodwill"}, "member { id }"),
    "memberStatusSet": ("MemberStatusSetInput", {"status": "SUSPENDED", "reason": "fraud check"}, "member { id }"),
    "feedbackSubmit": ("FeedbackSubmitInput", {"kind": "PRAISE", "channel": "APP", "subject": "s", "text": "t", "idempotencyKey": "k3"},
                       "feedback { id }"),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS_BY_MEMBER_ID))
@pytest.mark.parametrize("value", [str(2**31), str(2**63), str(2**70)])
async def test_huge_member_ids_in_mutations_are_not_found(api, mutation, value):
    input_type, fields, selection = MUTATIONS_BY_MEMBER_ID[mutation]
    document = f"mutation($input: {input_type}!) {{ {mutation}(input: $input) {{ {selection} {USER_ERRORS} }} }}"
    result = await api.gql(document, {"input": {"memberId": value, **fields}}, as_=ADMIN)
    assert not internal(result), result
    assert [code for code, _ in problems(data(result)[mutation])] == ["NOT_FOUND"]


@pytest.mark.parametrize("value", [str(2**63), str(2**64), "12345678901234567890123"])
async def test_huge_entry_ids_are_not_found(api, value):
    payload = data(await loyalty_reverse(api, value, "rev-huge"))["ledgerEntryReverse"]
    assert problems(payload) == [("NOT_FOUND", ["input", "entryId"])]


async def test_member_token_naming_no_member_is_refused(api):
    for sub in ("999999", str(2**40), "not-a-number"):
        result = await api.gql("{ me { id } }", token=token(api, role="member", sub=sub))
        assert error_codes(result) == ["FORBIDDEN"], (sub, result)


@pytest.mark.parametrize("key", [[2**31, 2**31, "a", "b"], [0, "x", "y", 2**63], [3, "x", "y", -1]])
async def test_cursors_with_huge_keys_are_invalid(api, key):
    import base64

    cursor = base64.urlsafe_b64encode(json.dumps(["TIER_DESC_NAME", key]).encode()).decode().rstrip("=")
    result = await api.gql("query($after: String) { members(after: $after) { edges { cursor } } }", {"after": cursor}, as_=ADMIN)
    assert error_codes(result) == ["INVALID"]


async def test_tier_change_cursor_past_64_bits_is_invalid(api):
    import base64

    cursor = base64.urlsafe_b64encode(json.dumps(["tierChanges", [2**64]]).encode()).decode().rstrip("=")
    result = await api.gql("query($after: String) { tierChanges(after: $after) { edges { cursor } } }", {"after": cursor}, as_=ADMIN)
    assert error_codes(result) == ["INVALID"]


# ---- text no database stores ----------------------------------------------------------


@pytest.mark.parametrize("bad", ["Wang\u0000", "\ud800Li"])
async def test_nul_and_lone_surrogates_are_invalid_and_write_nothing(api, bad):
    before = await Member.all().count()
    input = person(familyName=bad)
    body = json.dumps({"query": "mutation($input: MemberEnrollInput!) { memberEnroll(input: $input) { member { id } } }",
                       "variables": {"input": input}})  # ensure_ascii: the surrogate travels as \ud800
    response = await api.client.post("/graphql", content=body, headers={
        "content-type": "application/json", "Authorization": f"Bearer {api.token('admin')}"})
    assert response.status_code == 200
    assert error_codes(response.json()) == ["INVALID"]
    assert await Member.all().count() == before


async def test_nul_in_a_literal_argument_is_invalid(api):
    result = await api.gql('{ members(filter: {search: "Wang\\u0000"}) { edges { cursor } } }', as_=ADMIN)
    assert error_codes(result) == ["INVALID"]


async def test_json_nested_a_thousand_deep_is_400(api):
    body = '{"query": "{ branches { code } }", "variables": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    response = await api.client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400


async def test_body_that_is_not_utf8_is_400(api):
    response = await api.client.post("/graphql", content=b'{"query": "\xff\xfe"}', headers={"content-type": "application/json"})
    assert response.status_code == 400


# ---- tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("claims", [
    {"exp": str(int(time.time()) + 600)},  # a string
    {"exp": 10**30},  # never expires
    {"exp": int(time.time()) + MAX_LIFETIME_SECONDS + 3600},  # longer than the longest lifetime
    {"iat": "yesterday"},
    {"iat": int(time.time()) + 3600},  # issued in the future
    {"sub": "x" * 101},
    {"sub": "\u0000"},
    {"role": ["admin"]},
])
async def test_malformed_claims_are_unauthenticated(api, claims):
    result = await api.gql("{ branches { code } }", token=token(api, **claims))
    assert error_codes(result) == ["UNAUTHENTICATED"], result


# ---- miles: 64-bit columns, the partner cap, reversal of a reversed bonus -------------


async def test_balances_hold_more_than_32_bits(api):
    member = await enroll(api)
    await Member.filter(id=int(member["id"])).update(redeemable_miles=3_000_000_000)
    assert (await Member.get(id=int(member["id"]))).redeemable_miles == 3_000_000_000


@pytest.fixture
async def capped_api(db):
    """The API with a rules file whose partner cap is 2,500 miles in 24 hours."""
    import httpx

    from api.app import create_app
    from loyalty.rules import load_rules
    from tests.api.conftest import Api

    app = create_app(db, rules=replace(load_rules(), partner_daily_miles_cap=2_500), manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Api(client=client, settings=db)


async def test_partner_credits_past_the_daily_cap_are_refused(capped_api):
    api = capped_api
    await loyalty_register_partner("CAPHOTEL")
    member = await enroll(api)
    day = loyalty_today(api)
    partner = ("partner", "CAPHOTEL")
    first = data(await loyalty_partner_accrue(api, loyalty_partner_input(member, "cap-1", 2_000, day), partner))["partnerAccrue"]
    assert first["userErrors"] == []
    footprint = await loyalty_footprint(member)
    second = data(await loyalty_partner_accrue(api, loyalty_partner_input(member, "cap-2", 501, day), partner))["partnerAccrue"]
    assert problems(second) == [("LIMIT_EXCEEDED", ["input", "miles"])]
    assert await loyalty_footprint(member) == footprint
    exact = data(await loyalty_partner_accrue(api, loyalty_partner_input(member, "cap-3", 500, day), partner))["partnerAccrue"]
    assert exact["userErrors"] == []  # 2,000 + 500 is the cap itself


async def test_a_reversed_bonus_is_already_reversed(api):
    member = await enroll(api)
    await set_tier(api, member, "GOLD")
    flight = (await loyalty_fly(api, member, "BONUS-1"))["entry"]
    assert data(await loyalty_reverse(api, flight["id"], "rev-flight"))["ledgerEntryReverse"]["userErrors"] == []
    payload = data(await loyalty_reverse(api, flight["bonus"]["id"], "rev-bonus"))["ledgerEntryReverse"]
    assert problems(payload) == [("ALREADY_REVERSED", ["input", "entryId"])]


# ---- production: no suggestions; refusals logged in one line ---------------------------


async def test_refusals_are_logged_in_one_line(api, caplog):
    caplog.set_level(logging.INFO, logger="loyalty")
    await api.gql("{ members { edges { cursor } } }")  # no token
    records = [r for r in caplog.records if r.name.startswith("loyalty")]
    assert len(records) == 1 and records[0].name == "loyalty.request"  # the request's line says it all
    assert records[0].exc_info is None and "\n" not in records[0].getMessage()
    assert "outcome=UNAUTHENTICATED" in records[0].getMessage()


async def test_production_suggests_no_field_names(db):
    import httpx

    from api.app import create_app

    app = create_app(replace(db, introspection=False, graphiql=False), manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        result = (await client.post("/graphql", json={"query": "{ brnches { code } }"})).json()
    assert "Cannot query field" in result["errors"][0]["message"]
    assert "Did you mean" not in result["errors"][0]["message"]


async def test_member_token_for_own_member_still_works(api):
    member = await enroll(api)
    assert data(await api.gql("{ me { id } }", as_=as_member(member)))["me"]["id"] == member["id"]
