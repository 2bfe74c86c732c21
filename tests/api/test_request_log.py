"""One log line per request (api.request_log): the request id (X-Request-ID accepted
and returned, or generated), operation, role, outcome and duration; a client error is
that one line; an internal error is a traceback that carries the request id."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from api.request_log import JsonFormatter, ObserveRequests, request_id_from
from tests.api.conftest import as_member, enroll


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "loyalty.request"]


async def test_a_client_request_id_comes_back_and_names_the_log_line(api, caplog):
    caplog.set_level(logging.INFO, logger="loyalty")
    response = await api.client.post(
        "/graphql", json={"query": "query Branches { branches { code } }"},
        headers={"X-Request-ID": "trace-42.a:b", "Authorization": f"Bearer {api.token('admin')}"},
    )
    assert response.status_code == 200 and response.headers["x-request-id"] == "trace-42.a:b"
    [line] = request_lines(caplog)
    message = line.getMessage()
    assert message.startswith("trace-42.a:b POST /graphql op=Branches role=admin outcome=ok status=200 ms=")
    assert line.request.db_queries >= 1 and line.seconds > 0


async def test_an_accruals_database_calls_are_in_its_line(api, caplog):
    # A SQLite flight's statements go to the driver's thread in one call
    # (members.driver.run_sqlite), under group commit from the writer task: the call is
    # timed and counted for the request all the same.
    from tests.api.loyalty_factories import loyalty_flight, loyalty_today

    member = await enroll(api)
    caplog.set_level(logging.INFO, logger="loyalty")
    response = await api.client.post("/graphql", json={
        "query": "mutation($input: FlightAccrueInput!) { flightAccrue(input: $input) { entry { id } userErrors { code } } }",
        "variables": {"input": {"cardNumber": member["cardNumber"], "externalRef": "LOG-1",
                                "flight": loyalty_flight(loyalty_today(api))}},
    }, headers={"Authorization": f"Bearer {api.token('airline')}"})
    assert response.json()["data"]["flightAccrue"]["userErrors"] == []
    [line] = request_lines(caplog)
    assert line.request.db_queries >= 1 and line.request.db_seconds > 0


async def test_without_a_usable_request_id_one_is_generated(api):
    first = await api.client.post("/graphql", json={"query": "{ branches { code } }"})
    second = await api.client.post("/graphql", json={"query": "{ branches { code } }"}, headers={"X-Request-ID": "bad id\twith spaces"})
    generated = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(len(g) == 16 and int(g, 16) >= 0 for g in generated) and generated[0] != generated[1]
    # Every response carries one, the probes and the refusals of the HTTP layer too.
    assert "x-request-id" in (await api.client.get("/healthz")).headers
    assert "x-request-id" in (await api.client.post("/graphql", content=b"{nope")).headers


def test_request_ids_that_could_forge_a_log_line_are_replaced():
    assert request_id_from([(b"x-request-id", b"abc-123")]) == "abc-123"
    for hostile in (b"a\nb", b"a b", b"", b"x" * 129, b'"quoted"', "é".encode()):
        replaced = request_id_from([(b"x-request-id", hostile)])
        assert replaced != hostile.decode("utf-8", "replace") and len(replaced) == 16


async def test_a_client_error_is_one_line_without_a_traceback(api, caplog):
    member = await enroll(api)
    caplog.set_level(logging.INFO, logger="loyalty")
    await api.gql("query Members { members(first: 1) { totalCount } }", as_=as_member(member))  # not staff
    await api.gql("query Nobody { members(first: 1) { totalCount } }")  # no token
    lines = [r for r in caplog.records if r.name.startswith("loyalty")]
    assert [r.name for r in lines] == ["loyalty.request", "loyalty.request"]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)
    forbidden, anonymous = (r.getMessage() for r in lines)
    assert " op=Members role=member outcome=FORBIDDEN status=200 " in forbidden and "message=" in forbidden
    assert " op=Nobody role=- outcome=UNAUTHENTICATED status=200 " in anonymous


async def test_an_internal_error_is_logged_with_its_traceback_and_request_id(api, caplog, monkeypatch):
    caplog.set_level(logging.INFO, logger="loyalty")

    async def broken(*args, **kwargs):
        raise RuntimeError("secret database detail")

    monkeypatch.setattr("schema.regions.office_tier_counts", broken)
    response = await api.client.post(
        "/graphql", json={"query": "{ tierCounts { gold } }"},
        headers={"X-Request-ID": "req-500", "Authorization": f"Bearer {api.token('admin')}"},
    )
    assert response.json()["errors"][0]["message"] == "Internal error."
    [error] = [r for r in caplog.records if r.name == "loyalty.graphql"]
    assert error.levelno == logging.ERROR and "req-500" in error.getMessage() and error.request_id == "req-500"
    assert error.exc_info and "secret database detail" in str(error.exc_info[1])
    [line] = request_lines(caplog)
    assert line.levelno == logging.ERROR and " outcome=error " in line.getMessage()


async def test_an_exception_outside_graphql_is_a_500_with_the_request_id(caplog):
    caplog.set_level(logging.INFO, logger="loyalty")

    async def failing(scope, receive, send):
        raise RuntimeError("outside GraphQL")

    app = ObserveRequests(failing)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/board", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "boom-1"
    assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    [unhandled, line] = request_lines(caplog)
    assert "boom-1" in unhandled.getMessage() and "RuntimeError: outside GraphQL" in unhandled.getMessage()
    assert " outcome=error status=500 " in line.getMessage()


async def test_json_lines_carry_the_fields(api, caplog):
    caplog.set_level(logging.INFO, logger="loyalty")
    await api.client.post("/graphql", json={"query": "query Q { branches { code } }"}, headers={"X-Request-ID": "j-1"})
    [line] = request_lines(caplog)
    entry = json.loads(JsonFormatter().format(line))
    assert entry["request_id"] == "j-1" and entry["operation"] == "Q" and entry["role"] is None
    assert entry["outcome"] == "UNAUTHENTICATED" and entry["status"] == 200 and entry["path"] == "/graphql"
    assert entry["duration_ms"] >= 0 and "authentication required" in entry["error"] and entry["time"].endswith("Z")


def test_log_settings_are_read_and_checked():
    from api.settings import SettingsError, load_settings

    settings = load_settings({"LOYALTY_LOG_FORMAT": "JSON", "LOYALTY_LOG_LEVEL": "warning"}, dotenv=None)
    assert (settings.log_format, settings.log_level) == ("json", "warning")
    assert load_settings({}, dotenv=None).log_format == "text"
    for name, bad in (("LOYALTY_LOG_FORMAT", "xml"), ("LOYALTY_LOG_LEVEL", "loud")):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: bad}, dotenv=None)


def test_a_served_process_writes_json_lines_to_stderr():
    """configure_logging as api.asgi calls it, in a process of its own (it sets up
    the process's logging)."""
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from api.request_log import configure_logging\n"
        "logging.getLogger('uvicorn').setLevel('INFO')  # as uvicorn's log_level does\n"
        "configure_logging('json', 'info')\n"
        "logging.getLogger('loyalty.graphql').error('internal error (request r-1): boom', extra={'request_id': 'r-1'})\n"
        "logging.getLogger('uvicorn.error').info('Started server process')\n"
        "logging.getLogger('loyalty.request').debug('not at info')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(e["logger"], e["level"]) for e in lines] == [("loyalty.graphql", "error"), ("uvicorn.error", "info")]
    assert lines[0]["request_id"] == "r-1" and lines[0]["message"].endswith("boom")


def test_the_text_lines_time_is_loggings_default_in_utc():
    # TextFormatter makes the seconds' text once a second: the same text as logging's own.
    import time

    from api.request_log import TextFormatter

    reference = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    reference.converter = time.gmtime
    formatter = TextFormatter()
    for created in (1_700_000_000.123, 1_700_000_000.987, 1_700_000_001.5, 1_600_000_000.0):
        record = logging.LogRecord("loyalty.request", logging.INFO, "", 0, "line %s", ("one",), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert formatter.format(record) == reference.format(record)
