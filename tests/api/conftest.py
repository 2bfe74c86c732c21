"""GraphQL over HTTP against the app, on the session's database (SQLite or PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from members.access import Role


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Any

    def token(self, role: str | Role, scope: str | None = None, sub: str | None = None, ttl: int = 600) -> str:
        role = Role(role)
        return mint_token(self.settings, role, sub or f"{role.value}-test", scope, ttl)

    async def gql(self, query: str, variables: dict | None = None, *, token: str | None = None, as_: tuple | None = None) -> dict:
        """POST a GraphQL document; `as_=("office", "PEK01")` mints a token for the call."""
        if as_ is not None:
            token = self.token(*as_)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
async def api(db):
    app = create_app(db, manage_orm=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client=client, settings=db)


def data(result: dict) -> dict:
    """The data of a result that must have no errors."""
    assert not result.get("errors"), result.get("errors")
    return result["data"]


def error_codes(result: dict) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in result.get("errors") or []]


# ---- members: a shared factory for the member tests --------------------------------

MEMBER_FIELDS = """id cardNumber familyName givenName status tier phone email birthDate
  address { country province city line postalCode } office { code } branch { code }
  regionHistory { office { code } reason }"""

USER_ERRORS = "userErrors { code field message }"

ENROLL = (
    "mutation Enroll($input: MemberEnrollInput!) { memberEnroll(input: $input) { member { %s } %s } }"
)

_serials = iter(range(1, 10**9))


def office_address(office_code: str) -> dict:
    """An address that the shipped address rules (members/data/regions.json) map to
    this office by its city."""
    from members.regions import region_data

    rule = next(r for r in region_data()["address_rules"] if r["office"] == office_code and r.get("city"))
    return {"country": rule["country"], "province": rule.get("province"), "city": rule["city"]}


def person(office: str = "PEK01", **fields) -> dict:
    """A MemberEnrollInput with a phone and email no other call of this helper uses."""
    n = next(_serials)
    value = {
        "familyName": "Wang", "givenName": f"Fang {n}", "phone": f"+86 139 {n:08d}",
        "email": f"member{n}@example.com", "address": office_address(office),
    }
    value.update(fields)
    return value


async def enroll_payload(api, input: dict, as_: tuple = ("admin",), fields: str = MEMBER_FIELDS) -> dict:
    """The memberEnroll payload (member and userErrors) for this input."""
    return data(await api.gql(ENROLL % (fields, USER_ERRORS), {"input": input}, as_=as_))["memberEnroll"]


async def enroll(api, office: str = "PEK01", as_: tuple = ("admin",), fields: str = MEMBER_FIELDS, **input) -> dict:
    """Enrol a member living in `office`'s city (or as `input` says); the new member."""
    payload = await enroll_payload(api, person(office, **input), as_, fields)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["member"]


def as_member(member: dict) -> tuple:
    """`as_=` for the member token of this member."""
    return ("member", None, member["id"])


async def member_count(api) -> int:
    """How many members exist, as an admin counts them."""
    return data(await api.gql("{ members(first: 0) { totalCount } }", as_=("admin",)))["members"]["totalCount"]


async def set_tier(api, member: dict, tier: str) -> None:
    """Give a member a tier by an admin override."""
    result = await api.gql(
        "mutation($input: TierOverrideInput!) { tierOverride(input: $input) { userErrors { code message } } }",
        {"input": {"memberId": member["id"], "tier": tier, "reason": "test set-up"}}, as_=("admin",),
    )
    assert data(result)["tierOverride"]["userErrors"] == []


async def set_status(api, member: dict, status: str, reason: str = "test set-up") -> None:
    """Set a member's status as an admin."""
    result = await api.gql(
        "mutation($input: MemberStatusSetInput!) { memberStatusSet(input: $input) { userErrors { code message } } }",
        {"input": {"memberId": member["id"], "status": status, "reason": reason}}, as_=("admin",),
    )
    assert data(result)["memberStatusSet"]["userErrors"] == []


async def admin_view(api, member: dict, fields: str = MEMBER_FIELDS) -> dict:
    """The member as an admin reads it now."""
    result = await api.gql("query($id: ID) { member(id: $id) { %s } }" % fields, {"id": member["id"]}, as_=("admin",))
    return data(result)["member"]


def problems(payload: dict) -> list[tuple]:
    """A payload's userErrors as (code, field) pairs."""
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


# ---- a real server: uvicorn in a child process, for browsers and WebSocket clients ----


def live_server_environment(settings) -> dict[str, str]:
    """The settings of the test session for a server process (tests/live.py)."""
    return {
        "DATABASE_URL": settings.database_url, "LOYALTY_JWT_SECRET": settings.require_secret(),
        "LOYALTY_JWT_ISSUER": settings.jwt_issuer, "LOYALTY_JWT_AUDIENCE": settings.jwt_audience,
        "LOYALTY_TIMEZONE": settings.timezone, "LOYALTY_RULES": settings.rules_path or "", "REDIS_URL": "",
    }


@pytest.fixture
async def live_server(db):
    """The app under a real uvicorn on a loopback port (tests/live.py), on the test
    database. `.url` is its base URL; `.api` is an `Api` over real HTTP to it.
    A server per test: the `db` wipe restarts SQLite's event ids, which a running
    server's event feed would take for old ones."""
    from tests.live import start_server

    server = start_server(live_server_environment(db))
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            server.api = Api(client=client, settings=db)
            yield server
    finally:
        server.stop()


# ---- a clock the test sets: the app's "now" (and "today") without sleeping ----------


@dataclass
class Clock:
    """The app's current instant: the system clock until a test sets `now`."""

    now: Any = None  # a timezone-aware datetime, or None for the system clock

    def __call__(self):
        from datetime import datetime, timezone

        return self.now if self.now is not None else datetime.now(timezone.utc)


@dataclass
class ClockedApi(Api):
    clock: Clock = None  # type: ignore[assignment]


@pytest.fixture
async def clocked_api(db):
    """Like `api`, with `.clock`: set `api.clock.now = datetime(...)` to fix the server's
    now (Context.now / Context.today) for the following requests."""
    from dataclasses import replace

    clock = Clock()
    app = create_app(replace(db, clock=clock), manage_orm=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield ClockedApi(client=client, settings=db, clock=clock)
