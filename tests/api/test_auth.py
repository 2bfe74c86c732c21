"""Bearer tokens per AUTH.md: every bad token is UNAUTHENTICATED, never a 500."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.api.conftest import error_codes

QUERY = "{ branches { code } }"


def _token(settings, **overrides) -> str:
    now = int(time.time())
    claims = {"sub": "s1", "role": "admin", "iat": now, "exp": now + 600, "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def _alg_none(settings) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {"sub": "s1", "role": "admin", "iat": now, "exp": now + 600, "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "expired": lambda s: _token(s, exp=int(time.time()) - 120, iat=int(time.time()) - 800),
    "wrong audience": lambda s: _token(s, aud="someone-else"),
    "wrong issuer": lambda s: _token(s, iss="evil"),
    "alg none": _alg_none,
    "wrong key": lambda s: jwt.encode({"sub": "s1", "role": "admin", "iat": int(time.time()), "exp": int(time.time()) + 600, "iss": s.jwt_issuer, "aud": s.jwt_audience}, "another-secret-of-sufficient-length-123456", algorithm="HS256"),
    "garbage": lambda s: "not.a.token",
    "missing exp": lambda s: _token(s, exp=None),
    "missing role": lambda s: _token(s, role=None),
    "unknown role": lambda s: _token(s, role="superuser"),
    "office without scope": lambda s: _token(s, role="office"),
    "HS512 (not in the fixed list)": lambda s: jwt.encode({"sub": "s1", "role": "admin", "iat": int(time.time()), "exp": int(time.time()) + 600, "iss": s.jwt_issuer, "aud": s.jwt_audience}, s.jwt_secret, algorithm="HS512"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_token_is_unauthenticated(api, case):
    result = await api.gql(QUERY, token=BAD_TOKENS[case](api.settings))
    assert error_codes(result) == ["UNAUTHENTICATED"]
    assert result["data"] is None


async def test_missing_token_is_unauthenticated(api):
    assert error_codes(await api.gql(QUERY)) == ["UNAUTHENTICATED"]


async def test_non_bearer_header_is_unauthenticated(api):
    response = await api.client.post("/graphql", json={"query": QUERY}, headers={"Authorization": "Basic abc"})
    assert response.status_code == 200
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_clock_skew_of_thirty_seconds_is_allowed(api):
    token = _token(api.settings, exp=int(time.time()) - 20)
    result = await api.gql(QUERY, token=token)
    assert not result.get("errors")


async def test_token_for_unknown_office_is_forbidden(api):
    result = await api.gql(QUERY, as_=("office", "ZZZ99"))
    assert error_codes(result) == ["FORBIDDEN"]


async def test_unregistered_and_disabled_partner_tokens_are_forbidden(api):
    from members.partners import add_partner, disable_partner

    from members.cards import card_number

    query = '{ member(cardNumber: "%s") { cardNumber } }' % card_number(10_000_000)
    assert error_codes(await api.gql(query, as_=("partner", "HOTEL1"))) == ["FORBIDDEN"]
    await add_partner("HOTEL1", "Hotel One")
    assert error_codes(await api.gql(query, as_=("partner", "HOTEL1"))) == []
    await disable_partner("HOTEL1")
    assert error_codes(await api.gql(query, as_=("partner", "HOTEL1"))) == ["FORBIDDEN"]
