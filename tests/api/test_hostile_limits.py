"""Hostile documents: each is refused before it runs, at a cost linear in its size.

The documents are the ones found by trying the API as an attacker would (fragment
doubling, lists without `first`, aliases, introspection, huge WebSocket messages, idle
sockets); each test states the number that refuses it.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from graphql import parse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from schema.build import build_schema, list_prices
from schema.limits import GREETINGS_PER_DAY, DocumentMeasurer, Limits, QueryLimits
from tests.api.conftest import error_codes, live_server_environment

pytestmark = pytest.mark.db

TOO_COMPLEX = ["QUERY_TOO_COMPLEX"]


def doubling_fragments(count: int) -> str:
    """F0 selects a field; each next fragment spreads the one before twice: expanding
    the spreads doubles the work `count` times (the 21-fragment document is 843 bytes)."""
    fragments = ["fragment F0 on Query { tierRules { windowMonths } }"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} a{i}: tierRules {{ windowMonths }} ...F{i - 1} }}" for i in range(1, count)]
    return "{ ...F%d }\n" % (count - 1) + "\n".join(fragments)


def test_each_fragment_is_measured_once():
    schema = build_schema()._schema
    document = parse(doubling_fragments(21))
    calls = 0
    measurer = DocumentMeasurer(schema, list_prices(), document)
    original = measurer.field

    def counting(*args):
        nonlocal calls
        calls += 1
        return original(*args)

    measurer.field = counting
    [(_, measure)] = list(measurer.operations(document))
    # 2^21 fields once the spreads are expanded; 21 fragments x 2 fields measured.
    assert measure.cost >= 2**21
    assert calls == 2 * 21 + 1 - 1  # F0: tierRules + windowMonths; F1..F20: a_i + windowMonths


async def test_fragment_doubling_without_a_token_is_refused_in_well_under_100_ms(api):
    query = doubling_fragments(21)
    assert len(query) < 1500
    started = time.perf_counter()
    result = await api.gql(query)
    elapsed = time.perf_counter() - started
    assert error_codes(result) == TOO_COMPLEX
    assert elapsed < 0.1, f"refusal took {elapsed * 1000:.0f} ms"


async def test_branches_nested_nine_deep_is_too_costly(api):
    # 117 bytes; 6 branches x 26 offices x ... = millions of objects.
    query = "{ branches { offices { branch { offices { branch { offices { branch { offices { code } } } } } } } } }"
    result = await api.gql(query, as_=("branch", "NCB"))
    assert error_codes(result) == TOO_COMPLEX
    assert "costs" in result["errors"][0]["message"]


async def test_forty_greetings_over_a_year_are_too_costly_and_one_month_is_not(api):
    year = "g%d: greetingsDue(from: \"2027-01-01\", to: \"2027-12-31\") { date kind festival recipients }"
    refused = await api.gql("{ " + " ".join(year % i for i in range(40)) + " }", as_=("admin",))
    assert error_codes(refused) == TOO_COMPLEX
    # One month, once: 1 + 31 days x GREETINGS_PER_DAY x (1 + 4 fields), well under 5,000.
    month = await api.gql('{ greetingsDue(from: "2027-01-01", to: "2027-01-31") { date kind festival recipients } }', as_=("admin",))
    assert "QUERY_TOO_COMPLEX" not in error_codes(month)
    assert 31 * GREETINGS_PER_DAY * 5 < Limits().max_cost


async def test_ninety_eight_aliased_worklists_are_too_costly(api):
    query = "{ " + " ".join(f"w{i}: careCallsDue {{ totalCount }}" for i in range(98)) + " }"
    # Each loads a page of 50 by default: 98 x (1 + 50 + 50 x 1) = 9,898 > 5,000.
    result = await api.gql(query, as_=("admin",))
    assert error_codes(result) == TOO_COMPLEX


async def test_fifty_five_thousand_typenames_are_refused_by_the_token_limit(api):
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(55_000)) + " }"
    assert 900_000 < len(query) < 1024 * 1024
    result = await api.gql(query)
    assert result.get("data") is None
    assert "more than 5000 tokens" in result["errors"][0]["message"]


async def test_three_hundred_aliased_schemas_are_too_costly(api):
    query = "{ " + " ".join(f"s{i}: __schema {{ types {{ name fields {{ name }} }} }}" for i in range(300)) + " }"
    # 300 x (1 + 92 types x (2 + 23 fields x 2)) costs more than the fullest standard introspection query.
    result = await api.gql(query)
    assert error_codes(result) == TOO_COMPLEX
    assert "introspection costs" in result["errors"][0]["message"]


async def test_anonymous_callers_have_the_smaller_budget(api):
    # 1 + 6 + 6 x (1 + 26 + 26 x 4) = 793 > 500, < 5,000.
    query = "{ branches { offices { code name city country } } }"
    anonymous = await api.gql(query)
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]  # a token would let it run
    assert "without a token the limit is 500" in anonymous["errors"][0]["message"]
    beyond = await api.gql("{ branches { offices { code branch { offices { code } } } } }")
    assert error_codes(beyond) == TOO_COMPLEX  # about 8,000: more than a token allows too
    staff = await api.gql(query, as_=("admin",))
    assert "QUERY_TOO_COMPLEX" not in error_codes(staff)


def test_limits_come_from_the_environment():
    from api.settings import SettingsError, load_settings

    settings = load_settings(
        environ={"LOYALTY_MAX_COST": "800", "LOYALTY_ANONYMOUS_MAX_COST": "50", "LOYALTY_MAX_DEPTH": "6", "LOYALTY_MAX_TOKENS": "900"},
        dotenv=None,
    )
    assert settings.limits == Limits(max_depth=6, max_cost=800, anonymous_max_cost=50, max_tokens=900)
    assert load_settings(environ={}, dotenv=None).limits == Limits(max_depth=12, max_cost=5000, anonymous_max_cost=500, max_tokens=5000)
    with pytest.raises(SettingsError, match="LOYALTY_MAX_COST"):
        load_settings(environ={"LOYALTY_MAX_COST": "lots"}, dotenv=None)


def test_one_schema_default_limit():
    schema = build_schema()
    limits = QueryLimits(schema._schema, Limits(), list_prices(), introspection=True)
    assert limits.limits.max_cost == 5000  # the same default as api.settings


# ---- WebSocket: message size and connection_init timeout, on a real server ----------


@pytest.fixture
async def guarded_server(db):
    from tests.live import start_server

    server = start_server({**live_server_environment(db), "LOYALTY_WS_INIT_TIMEOUT_SECONDS": "1"})
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
async def test_socket_without_connection_init_is_closed_after_the_timeout(guarded_server, protocol):
    async with connect(guarded_server.ws_url, subprotocols=[protocol]) as connection:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 30)
        assert connection.close_code == 4408
        assert time.monotonic() - started < 20  # closed by the 1 s timeout, not by the test's bound


async def test_websocket_message_over_one_mib_is_refused(guarded_server):
    async with connect(guarded_server.ws_url, subprotocols=["graphql-transport-ws"], max_size=None) as connection:
        await connection.send(json.dumps({"type": "connection_init", "payload": {"pad": "x" * (1024 * 1024 + 1)}}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 30)
        assert connection.close_code == 1009


@pytest.mark.parametrize("payload", [{"Authorization": 12345}, {"Authorization": ["Bearer", "x"]}, {"Authorization": {"a": 1}}])
async def test_non_string_authorization_in_connection_init_is_refused(guarded_server, payload):
    async with connect(guarded_server.ws_url, subprotocols=["graphql-transport-ws"]) as connection:
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(connection.recv(), 30)
        assert connection.close_code == 4403


async def test_member_token_naming_no_member_is_refused_on_the_websocket(guarded_server, db):
    from api.auth import mint_token
    from members.access import Role
    from tests.live import WsClient, WsClosed

    with pytest.raises(WsClosed) as closed:
        await WsClient.open(guarded_server.ws_url, mint_token(db, Role.MEMBER, "999999"))
    assert closed.value.code == 4403


async def test_a_promised_body_that_never_comes_is_408_after_the_timeout(db):
    from tests.live import start_server

    server = start_server({**live_server_environment(db), "LOYALTY_BODY_TIMEOUT_SECONDS": "1"})
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
        assert status.startswith(b"HTTP/1.1 408"), status
        writer.close()
    finally:
        server.stop()


async def test_a_page_size_sent_as_a_variable_is_priced_by_its_value(api):
    # Per member: 1 + 20 fields of the tier status and the region history (10 x 3): about 60.
    query = """query($n: Int) { members(first: $n) { edges { node { id cardNumber
      tierStatus { tier validUntil qualifyingMiles qualifyingSegments nextTier milesToNextTier atRiskOfDowngrade }
      regionHistory { office { code } reason } } } } }"""
    small = await api.gql(query, {"n": 5}, as_=("admin",))
    assert "QUERY_TOO_COMPLEX" not in error_codes(small)
    large = await api.gql(query, {"n": 100}, as_=("admin",))
    assert error_codes(large) == TOO_COMPLEX
    unsent = await api.gql(query, as_=("admin",))  # not sent: priced at the largest page
    assert error_codes(unsent) == TOO_COMPLEX
