"""Prometheus metrics at /metrics (api.metrics), scraped after real requests: in
process, across two server processes sharing PROMETHEUS_MULTIPROC_DIR (as `loyalty
serve --workers N` runs them), and for WebSocket subscriptions and the event feed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import RequestMetrics, observe_job, prepare_multiprocess_dir
from tests.api.conftest import enroll, live_server_environment, set_tier


def samples(text: str) -> dict[tuple, float]:
    """{(sample name, (label, value), ...): value} of an exposition."""
    return {
        (s.name, *sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(scraped: dict[tuple, float], name: str, **labels: str) -> float:
    return scraped.get((name, *sorted(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> dict[tuple, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_requests_are_counted_by_operation_and_outcome_and_timed(api):
    before = await scrape(api.client)
    admin = api.token("admin")
    for _ in range(2):
        await api.client.post("/graphql", json={"query": "query MetricsBranches { branches { code } }"},
                              headers={"Authorization": f"Bearer {admin}"})
    await api.client.post("/graphql", json={"query": "query MetricsBranches { branches { code } }"})  # no token
    await api.client.post("/graphql", json={"query": "{ nope }"})
    await api.client.post("/graphql", content=b"{not json", headers={"Content-Type": "application/json"})
    await api.client.get("/graphql", headers={"Accept": "text/html"})  # GraphiQL: not a GraphQL request
    after = await scrape(api.client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("loyalty_requests_total", operation="MetricsBranches", outcome="ok") == 2
    assert grew("loyalty_requests_total", operation="MetricsBranches", outcome="UNAUTHENTICATED") == 1
    assert grew("loyalty_requests_total", operation="anonymous", outcome="GRAPHQL_VALIDATION") == 1
    assert grew("loyalty_requests_total", operation="anonymous", outcome="HTTP_400") == 1
    assert grew("loyalty_requests_total", operation="anonymous", outcome="ok") == 0
    assert grew("loyalty_request_duration_seconds_count", operation="MetricsBranches") == 3
    assert grew("loyalty_request_duration_seconds_bucket", operation="MetricsBranches", le="+Inf") == 3
    assert grew("loyalty_request_duration_seconds_sum", operation="MetricsBranches") > 0
    assert grew("loyalty_request_db_seconds_count", operation="MetricsBranches") == 3
    assert grew("loyalty_db_queries_total", context="request") >= 2  # the branches, read twice
    assert grew("loyalty_db_seconds_total", context="request") > 0
    # Scrapes are not counted as GraphQL requests.
    assert not any(k[0] == "loyalty_requests_total" and ("operation", "metrics") in k for k in after)


def test_operation_labels_are_bounded():
    metrics = RequestMetrics(max_operations=2)
    assert [metrics.operation_label(n) for n in ("A", "B", "C", "A", None, "bad name\n")] == [
        "A", "B", "other", "A", "anonymous", "invalid",
    ]


def test_job_runs_are_counted_and_timed():
    from api.metrics import JOB_RUNS, JOB_SECONDS

    with observe_job("metrics_test_job"):
        pass
    with pytest.raises(RuntimeError), observe_job("metrics_test_job"):
        raise RuntimeError("job failed")
    scraped = samples(generate_latest(JOB_RUNS).decode() + generate_latest(JOB_SECONDS).decode())
    assert value(scraped, "loyalty_job_runs_total", job="metrics_test_job", outcome="ok") == 1
    assert value(scraped, "loyalty_job_runs_total", job="metrics_test_job", outcome="error") == 1
    assert value(scraped, "loyalty_job_duration_seconds_count", job="metrics_test_job") == 2


def test_the_schedulers_runs_are_counted_and_timed():
    from datetime import date, datetime, timedelta, timezone

    from api.metrics import JOB_RUNS, JOB_SECONDS, scheduler_run
    from api.scheduler import RunRecord
    from loyalty.models import JobRunStatus

    started = datetime(2026, 12, 2, 1, tzinfo=timezone.utc)
    for status, seconds in ((JobRunStatus.DONE, 4), (JobRunStatus.DONE, 6), (JobRunStatus.FAILED, 1)):
        scheduler_run(RunRecord("metrics_scheduled_job", date(2026, 12, 1), status, "test", started,
                                started + timedelta(seconds=seconds), "", None))
    scraped = samples(generate_latest(JOB_RUNS).decode() + generate_latest(JOB_SECONDS).decode())
    assert value(scraped, "loyalty_job_runs_total", job="metrics_scheduled_job", outcome="ok") == 2
    assert value(scraped, "loyalty_job_runs_total", job="metrics_scheduled_job", outcome="error") == 1
    assert value(scraped, "loyalty_job_duration_seconds_sum", job="metrics_scheduled_job") == 11


async def test_metrics_can_be_turned_off(db):
    app = create_app(replace(db, metrics=False), manage_orm=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 404
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 200


def test_serve_prepares_a_shared_directory_for_several_workers(tmp_path):
    environ: dict[str, str] = {}
    assert prepare_multiprocess_dir(1, environ) is None and environ == {}
    made = prepare_multiprocess_dir(2, environ)
    assert made is not None and environ["PROMETHEUS_MULTIPROC_DIR"] == made
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"an earlier run")
    assert prepare_multiprocess_dir(1, {"PROMETHEUS_MULTIPROC_DIR": str(given)}) == str(given)
    assert list(given.iterdir()) == []  # earlier runs' files removed


async def test_two_server_processes_sharing_a_directory_report_together(db, tmp_path):
    """`loyalty serve --workers 2` in miniature: two uvicorn processes, one metrics
    directory; either one's /metrics counts the requests both answered."""
    from tests.live import start_server

    directory = prepare_multiprocess_dir(2, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus")})
    env = {**live_server_environment(db), "PROMETHEUS_MULTIPROC_DIR": directory}
    servers = [start_server(env), start_server(env)]
    try:
        for count, server in zip((2, 3), servers):
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                for _ in range(count):
                    response = await client.post("/graphql", json={"query": "query Shared { __typename }"})
                    assert response.status_code == 200
        for server in servers:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                scraped = await scrape(client)
            assert value(scraped, "loyalty_requests_total", operation="Shared", outcome="ok") == 5
            assert value(scraped, "loyalty_request_duration_seconds_count", operation="Shared") == 5
    finally:
        for server in servers:
            server.stop()


async def test_websockets_subscriptions_and_the_feed_are_measured(live_server):
    from tests.live import WsClient

    api = live_server.api
    member = await enroll(api)
    client = await WsClient.open(live_server.ws_url, api.token("admin"))
    try:
        await client.subscribe("1", "subscription { tierChanged { cursor toTier } }")
        await set_tier(api, member, "GOLD")
        assert (await client.event("1"))["data"]["tierChanged"]["toTier"] == "GOLD"
        # The change may reach the subscriber before the shared reader counts it: a
        # subscriber still catching up (its subscribe handled after the change committed)
        # replays it from the log itself, and the reader, woken by the same commit, reads
        # and counts it a moment later. So wait for the count (10 s at most).
        deadline = time.monotonic() + 10
        while value(scraped := await scrape(api.client), "loyalty_feed_events_total") < 1:
            assert time.monotonic() < deadline, "the feed's reader did not count the change"
            await asyncio.sleep(0.02)
        assert value(scraped, "loyalty_websocket_connections_open") == 1
        assert value(scraped, "loyalty_subscriptions_open") == 1
        assert value(scraped, "loyalty_feed_events_total") >= 1
        assert value(scraped, "loyalty_feed_lag_seconds_count") >= 1
        assert value(scraped, "loyalty_feed_dropped_subscribers_total") == 0
    finally:
        await client.close()
    # The server notices the close in its own time: wait for the gauges (10 s at most).
    deadline = time.monotonic() + 10
    while True:
        scraped = await scrape(api.client)
        if value(scraped, "loyalty_websocket_connections_open") == 0 and value(scraped, "loyalty_subscriptions_open") == 0:
            break
        assert time.monotonic() < deadline, "the gauges did not go back to 0 after the connection closed"
        await asyncio.sleep(0.02)
