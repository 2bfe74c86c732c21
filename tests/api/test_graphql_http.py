"""GraphQL over HTTP (api.graphql_http): the response's media type by Accept, and
4xx for request errors when the client accepts application/graphql-response+json.
The full audit of the reference implementation is tests/api/test_graphql_http_audit.py."""

from __future__ import annotations

import pytest

from api.graphql_http import GRAPHQL_RESPONSE_JSON, JSON, negotiate

NEW = {"Accept": GRAPHQL_RESPONSE_JSON}
LEGACY = {"Accept": JSON}


@pytest.mark.parametrize(("accept", "chosen"), [
    (None, JSON),
    ("", JSON),
    ("*/*", JSON),
    ("application/json", JSON),
    ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
    ("application/graphql-response+json, application/json", GRAPHQL_RESPONSE_JSON),
    ("application/json, application/graphql-response+json;q=0.9", JSON),
    ("application/graphql-response+json;q=0, application/json", JSON),
    ("text/html", JSON),
    ("application/graphql-response+json; charset=utf-8", GRAPHQL_RESPONSE_JSON),
])
def test_negotiation(accept, chosen):
    assert negotiate(accept) == chosen


async def test_the_response_has_the_accepted_media_type(api):
    for headers, media_type in ((NEW, GRAPHQL_RESPONSE_JSON), (LEGACY, JSON), ({}, JSON)):
        response = await api.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
        assert response.headers["content-type"] == f"{media_type}; charset=utf-8"


@pytest.mark.parametrize("body", [
    {"query": "{ branches { code "},  # does not parse
    {"query": "{ nope }"},  # does not validate
    {"query": "query($n: Int!) { __typename }", "variables": {}},  # variables do not fit
])
async def test_request_errors_are_400_with_graphql_response_json_and_200_with_json(api, body):
    new = await api.client.post("/graphql", json=body, headers=NEW)
    assert new.status_code == 400, new.text
    assert new.headers["content-type"] == f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
    assert "data" not in new.json() and new.json()["errors"]

    legacy = await api.client.post("/graphql", json=body, headers=LEGACY)
    assert legacy.status_code == 200 and legacy.json()["errors"]


async def test_field_errors_are_200_with_data(api):
    response = await api.client.post("/graphql", json={"query": "{ branches { code } }"}, headers=NEW)  # no token
    assert response.status_code == 200
    assert response.json()["data"] is None and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_malformed_http_requests_are_json_errors_in_the_negotiated_type(api):
    for headers, media_type in ((NEW, GRAPHQL_RESPONSE_JSON), (LEGACY, JSON)):
        response = await api.client.post("/graphql", content=b"{nope", headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.headers["content-type"] == f"{media_type}; charset=utf-8"
        assert "JSON" in response.json()["errors"][0]["message"]
    unknown = await api.client.post("/graphql", json={"query": "query A { __typename }", "operationName": "B"}, headers=NEW)
    assert unknown.status_code == 400 and unknown.json()["errors"]  # no operation to run
    unsupported = await api.client.post("/graphql", content=b"query", headers={**NEW, "Content-Type": "text/plain"})
    assert unsupported.status_code in (400, 415) and unsupported.json()["errors"]
