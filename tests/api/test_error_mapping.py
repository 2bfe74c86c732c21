"""One mapping from services' refusals to GraphQL errors (schema.errors), for every
resolver: a DomainError of a mutation goes to its payload's userErrors; ForbiddenError
is FORBIDDEN; a code the contract does not list, or a refusal raised by a query, is a
top-level error with that code; anything else is "Internal error."."""

from __future__ import annotations

import pytest

from members.errors import DomainError, ForbiddenError
from tests.api.conftest import USER_ERRORS, data, enroll, error_codes, problems

pytestmark = pytest.mark.db

REDEEM = "mutation($input: MilesRedeemInput!) { milesRedeem(input: $input) { entry { id } member { id } %s } }" % USER_ERRORS


async def _redeem(api, member) -> dict:
    return await api.gql(REDEEM, {"input": {"memberId": member["id"], "miles": 1, "description": "x", "idempotencyKey": "k"}},
                         as_=("admin",))


def _raising(error: Exception):
    async def service(*args, **kwargs):
        raise error

    return service


async def test_a_contract_code_goes_to_the_payload(api, monkeypatch):
    member = await enroll(api)
    monkeypatch.setattr("loyalty.ledger.redeem", _raising(DomainError("INSUFFICIENT_MILES", "not enough", ("input", "miles"))))
    payload = data(await _redeem(api, member))["milesRedeem"]
    assert problems(payload) == [("INSUFFICIENT_MILES", ["input", "miles"])]
    assert (payload["entry"], payload["member"]) == (None, None)


async def test_forbidden_from_a_service_is_forbidden_not_internal(api, monkeypatch):
    member = await enroll(api)
    monkeypatch.setattr("loyalty.ledger.redeem", _raising(ForbiddenError("not yours")))
    result = await _redeem(api, member)
    assert error_codes(result) == ["FORBIDDEN"]
    assert result["errors"][0]["message"] == "not yours"


async def test_a_code_outside_the_contract_is_top_level_not_internal(api, monkeypatch):
    member = await enroll(api)
    monkeypatch.setattr("loyalty.ledger.redeem", _raising(DomainError("SOMETHING_NEW", "a new rule said no")))
    result = await _redeem(api, member)
    assert error_codes(result) == ["SOMETHING_NEW"]
    assert result["errors"][0]["message"] == "a new rule said no"


async def test_a_query_refusal_keeps_its_code(api, monkeypatch):
    monkeypatch.setattr("care.calls.care_calls_due", _raising(DomainError("INVALID", "after is not a valid cursor", ("after",))))
    result = await api.gql("{ careCallsDue { totalCount } }", as_=("admin",))
    assert error_codes(result) == ["INVALID"]


async def test_anything_else_is_masked(api, monkeypatch):
    member = await enroll(api)
    monkeypatch.setattr("loyalty.ledger.redeem", _raising(RuntimeError("secret detail")))
    result = await _redeem(api, member)
    assert [e["message"] for e in result["errors"]] == ["Internal error."]
    assert "secret" not in str(result)
