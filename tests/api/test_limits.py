"""Request limits: depth, cost, body size, malformed JSON; masked internal errors."""

from __future__ import annotations

from tests.api.conftest import error_codes


def _nested(levels: int) -> str:
    """A cheap query (pages of one) whose deepest field is at `levels` (the top field is level 1)."""
    # member(1) tierHistory(2) edges(3) node(4) member(5) tierHistory(6) edges(7) node(8) member(9) ...
    chain = ['member(id: "1")'] + ["tierHistory(first: 1)", "edges", "node", "member"] * 4
    fields = chain[: levels - 1]
    leaf = "id" if fields[-1].startswith("member") else "cursor"
    query = leaf
    for name in reversed(fields):
        query = f"{name} {{ {query} }}"
    return "{ " + query + " }"


async def test_depth_twelve_is_allowed_and_thirteen_refused(api):
    token = api.token("admin")
    ok = await api.gql(_nested(12), token=token)
    assert "QUERY_TOO_COMPLEX" not in error_codes(ok), ok
    refused = await api.gql(_nested(13), token=token)
    assert error_codes(refused) == ["QUERY_TOO_COMPLEX"]
    assert "13 levels" in refused["errors"][0]["message"]
    assert refused.get("data") is None


async def test_cost_limit_refuses_huge_fan_out(api):
    query = "{ members(first: 100) { edges { node { ledger(first: 100) { edges { node { id kind redeemableMiles source activityDate } } } } } } }"
    result = await api.gql(query, as_=("admin",))
    assert error_codes(result) == ["QUERY_TOO_COMPLEX"]
    assert "costs" in result["errors"][0]["message"]


async def test_ordinary_query_is_well_under_the_cost_limit(api):
    query = """{ members(first: 50) { totalCount edges { cursor node { id cardNumber familyName givenName tier status
      redeemableMiles office { code name } branch { code } tierStatus { tier validUntil qualifyingMiles atRiskOfDowngrade } } } } }"""
    assert "QUERY_TOO_COMPLEX" not in error_codes(await api.gql(query, as_=("admin",)))


async def test_introspection_query_is_exempt(api):
    from graphql import get_introspection_query

    result = await api.gql(get_introspection_query())
    assert not result.get("errors")
    assert result["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_oversized_body_is_413(api):
    body = '{"query": "{ branches { code } }", "variables": {"pad": "' + "x" * (1024 * 1024) + '"}}'
    response = await api.client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "over" in response.json()["errors"][0]["message"]


async def test_malformed_json_is_400_not_500(api):
    response = await api.client.post("/graphql", content=b'{"query": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.text


async def test_syntax_error_is_reported_not_masked(api):
    result = (await api.client.post("/graphql", json={"query": "{ branches { code "})).json()
    assert "Syntax Error" in result["errors"][0]["message"]


async def test_internal_errors_are_masked(api, monkeypatch):
    import members.regions

    async def broken(*args, **kwargs):
        raise RuntimeError("secret database detail")

    monkeypatch.setattr("schema.regions.office_tier_counts", broken)
    result = await api.gql("{ tierCounts { gold } }", as_=("admin",))
    assert result["errors"][0]["message"] == "Internal error."
    assert "secret" not in str(result)
    assert members.regions  # the real module is untouched


async def test_health_and_readiness(api):
    assert (await api.client.get("/healthz")).text == "ok"
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


async def test_oversized_streamed_body_without_length_is_413(api):
    async def chunks():
        yield b'{"query": "{ branches { code } }", "variables": {"pad": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}}'

    response = await api.client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
