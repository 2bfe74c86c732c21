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
