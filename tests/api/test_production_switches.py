"""Production switches: LOYALTY_PRODUCTION=1 (or each LOYALTY_DISABLE_* alone) turns
introspection and GraphiQL off; a laptop has both on."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from api.app import create_app
from api.auth import mint_token
from api.settings import load_settings
from members.access import Role

INTROSPECTION = "{ __schema { queryType { name } } }"


@pytest.mark.parametrize(
    ("environ", "introspection", "graphiql"),
    [
        ({}, True, True),
        ({"LOYALTY_PRODUCTION": "1"}, False, False),
        ({"LOYALTY_DISABLE_INTROSPECTION": "1"}, False, True),
        ({"LOYALTY_DISABLE_GRAPHIQL": "true"}, True, False),
    ],
)
def test_settings(environ, introspection, graphiql):
    settings = load_settings(environ=environ, dotenv=None)
    assert (settings.introspection, settings.graphiql) == (introspection, graphiql)


@pytest.mark.parametrize("production", [False, True])
async def test_the_served_app_follows_the_switches(db, production):
    settings = replace(db, introspection=not production, graphiql=not production)
    app = create_app(settings, manage_orm=False)
    token = mint_token(settings, Role.ADMIN, "admin-test")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        page = await client.get("/graphql", headers={"Accept": "text/html"})
        result = (await client.post("/graphql", json={"query": INTROSPECTION}, headers={"Authorization": f"Bearer {token}"})).json()
        ordinary = (await client.post("/graphql", json={"query": "{ tierRules { windowMonths } }"},
                                      headers={"Authorization": f"Bearer {token}"})).json()
    if production:
        assert page.status_code != 200 or "graphiql" not in page.text.lower()
        assert result.get("errors") and not result.get("data")
    else:
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert result["data"]["__schema"]["queryType"]["name"] == "Query"
    assert not ordinary.get("errors") and ordinary["data"]["tierRules"]["windowMonths"] == 12
