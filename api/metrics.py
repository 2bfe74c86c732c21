"""Prometheus metrics at /metrics (the prometheus-client library).

With several uvicorn workers every worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode) and /metrics, in
whichever worker answers, adds up all of them. `loyalty serve --workers N` sets the
directory up (prepare_multiprocess_dir); with one worker the values live in the
process. The variable must be set before this module is first imported.

What is measured:
- loyalty_requests_total{operation,outcome}, loyalty_request_duration_seconds{operation},
  loyalty_request_db_seconds{operation}: GraphQL requests over HTTP (api.request_log);
  `operation` is the client's operationName ("anonymous" without one; at most
  MAX_OPERATIONS names per process, then "other"), `outcome` is "ok", a refusal's code
  (FORBIDDEN, UNAUTHENTICATED, GRAPHQL_VALIDATION, ...), "HTTP_4xx" or "error".
- loyalty_db_queries_total / loyalty_db_seconds_total{context}: every database call,
  in a request ("request") or not ("background": the event feed's reader, jobs).
- loyalty_websocket_connections_open, loyalty_subscriptions_open,
  loyalty_feed_dropped_subscribers_total, loyalty_feed_backlog_events,
  loyalty_feed_events_total, loyalty_feed_lag_seconds: the tierChanged feed
  (loyalty.feed.FeedHooks).
- loyalty_job_runs_total{job,outcome}, loyalty_job_duration_seconds{job}: daily jobs
  run inside the service (observe_job).
- loyalty_webhook_attempts_total{partner,outcome}, loyalty_webhook_attempt_seconds{partner},
  loyalty_webhook_pauses_total{partner}: partner webhook deliveries (loyalty.webhooks.
  WebhookHooks; `partner` is a registered partner's code, a small set).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, disable_created_metrics
from starlette.requests import Request
from starlette.responses import Response

from loyalty.feed import FeedHooks
from schema.observe import current_request

disable_created_metrics()  # no *_created series: they double the output and say little
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATIONS = 200  # distinct operation labels per process; more are "other"
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")

_LATENCY = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUESTS = Counter("loyalty_requests", "GraphQL requests over HTTP, by operation name and outcome.", ["operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "loyalty_request_duration_seconds", "Time to answer a GraphQL request over HTTP.", ["operation"], buckets=_LATENCY,
)
REQUEST_DB_SECONDS = Histogram(
    "loyalty_request_db_seconds", "Time a GraphQL request spent in database calls.", ["operation"], buckets=_LATENCY,
)
DB_QUERIES = Counter("loyalty_db_queries", "Database calls (request: during an HTTP request; background: otherwise).", ["context"])
DB_SECONDS = Counter("loyalty_db_seconds", "Time spent in database calls.", ["context"])
WEBSOCKETS_OPEN = Gauge("loyalty_websocket_connections_open", "Open WebSocket connections.", multiprocess_mode="livesum")
SUBSCRIPTIONS_OPEN = Gauge("loyalty_subscriptions_open", "Open tierChanged subscriptions.", multiprocess_mode="livesum")
FEED_DROPPED = Counter("loyalty_feed_dropped_subscribers", "Subscribers disconnected for falling too far behind (4509).")
FEED_EVENTS = Counter("loyalty_feed_events", "Tier events read from the log and handed to subscribers.")
FEED_BACKLOG = Gauge(
    "loyalty_feed_backlog_events", "Live events waiting for the slowest subscriber after the latest hand-out.",
    multiprocess_mode="livemax",
)
FEED_LAG = Histogram(
    "loyalty_feed_lag_seconds",
    "From a tier change's effective time to its hand-out to subscribers (a job's changes dated earlier show as late).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0, 3600.0),
)
JOB_RUNS = Counter("loyalty_job_runs", "Daily job runs, by job and outcome (ok or error).", ["job", "outcome"])
JOB_SECONDS = Histogram(
    "loyalty_job_duration_seconds", "Time a daily job ran.", ["job"],
    buckets=(0.1, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0),
)
WEBHOOK_ATTEMPTS = Counter(
    "loyalty_webhook_attempts", "Partner webhook delivery attempts, by partner and outcome (delivered or failed).",
    ["partner", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "loyalty_webhook_attempt_seconds", "Time a partner's endpoint took to answer a delivery (or to fail).", ["partner"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
WEBHOOK_PAUSES = Counter("loyalty_webhook_pauses", "Partner webhooks paused after repeated failure.", ["partner"])


# ---- requests ---------------------------------------------------------------------


class RequestMetrics:
    """Records one finished GraphQL request; label children are cached per process."""

    def __init__(self, max_operations: int = MAX_OPERATIONS) -> None:
        self.max_operations = max_operations
        self._operations: dict[str | None, str] = {}
        self._children: dict[tuple[str, str], tuple] = {}

    def operation_label(self, name: str | None) -> str:
        label = self._operations.get(name)
        if label is None:
            if name is None:
                label = "anonymous"
            elif not _NAME.fullmatch(name):
                label = "invalid"
            elif len(self._operations) >= self.max_operations:
                return "other"
            else:
                label = name
            self._operations[name] = label
        return label

    def observe(self, operation: str | None, outcome: str, seconds: float, db_seconds: float) -> None:
        label = self.operation_label(operation)
        children = self._children.get((label, outcome))
        if children is None:
            children = self._children[(label, outcome)] = (
                REQUESTS.labels(label, outcome), REQUEST_SECONDS.labels(label), REQUEST_DB_SECONDS.labels(label),
            )
        requests, duration, db = children
        requests.inc()
        duration.observe(seconds)
        db.observe(db_seconds)

    def websocket_opened(self) -> None:
        WEBSOCKETS_OPEN.inc()

    def websocket_closed(self) -> None:
        WEBSOCKETS_OPEN.dec()


# ---- the event feed ---------------------------------------------------------------


def _handed_out(events: list, backlog: int) -> None:
    FEED_EVENTS.inc(len(events))
    FEED_BACKLOG.set(backlog)
    effective_at = getattr(events[-1], "effective_at", None)
    if effective_at is not None:
        FEED_LAG.observe(max(0.0, (datetime.now(timezone.utc) - effective_at).total_seconds()))


FEED_HOOKS = FeedHooks(subscribers=SUBSCRIPTIONS_OPEN.inc, dropped=FEED_DROPPED.inc, handed_out=_handed_out)


# ---- the database -----------------------------------------------------------------

_DB_METHODS = ("execute_insert", "execute_many", "execute_query", "execute_query_dict", "execute_script")
_request_db = (DB_QUERIES.labels("request"), DB_SECONDS.labels("request"))
_background_db = (DB_QUERIES.labels("background"), DB_SECONDS.labels("background"))


def _timed(method):
    @functools.wraps(method)
    async def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - start
            record = current_request.get()
            if record is None:
                queries, seconds = _background_db
            else:
                record.db_seconds += elapsed
                record.db_queries += 1
                queries, seconds = _request_db
            queries.inc()
            seconds.inc(elapsed)

    timed.__loyalty_timed__ = True
    return timed


def instrument_database() -> None:
    """Time every database call of Tortoise's SQLite and asyncpg clients (their
    transaction wrappers included) and every call sent straight to the driver
    (members.driver.send: the member read's statement, a posting's SQLite statements),
    once per process."""
    from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionWrapper

    from members import driver

    classes: list[type] = [SqliteClient, SqliteTransactionWrapper]
    with contextlib.suppress(ImportError):  # asyncpg is a dependency, but be tolerant
        from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper

        classes += [AsyncpgDBClient, TransactionWrapper]
    for cls in classes:
        for name in _DB_METHODS:
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "__loyalty_timed__", False):
                setattr(cls, name, _timed(method))
    if not getattr(driver.send, "__loyalty_timed__", False):
        driver.send = _timed(driver.send)


# ---- jobs -------------------------------------------------------------------------


@contextlib.contextmanager
def observe_job(job: str) -> Iterator[None]:
    """Count and time one run of a daily job (`with observe_job("tiers_review"): ...`);
    an exception counts as outcome "error" and goes on."""
    start = time.perf_counter()
    ok = False
    try:
        yield
        ok = True
    finally:
        record_job_run(job, ok, time.perf_counter() - start)


def record_job_run(job: str, ok: bool, seconds: float) -> None:
    """Count one finished run of a daily job and its duration."""
    JOB_RUNS.labels(job, "ok" if ok else "error").inc()
    JOB_SECONDS.labels(job).observe(seconds)


def scheduler_run(record) -> None:
    """The scheduler's ``on_run`` (api.scheduler.RunRecord): its runs in the metrics. A
    `loyalty scheduler` process sharing PROMETHEUS_MULTIPROC_DIR with the server shows in
    the server's /metrics."""
    record_job_run(record.job, record.status.value == "DONE", record.seconds)


def _webhook_attempt(partner: str, delivered: bool, seconds: float) -> None:
    WEBHOOK_ATTEMPTS.labels(partner, "delivered" if delivered else "failed").inc()
    WEBHOOK_SECONDS.labels(partner).observe(seconds)


def webhook_hooks():
    """loyalty.webhooks.WebhookHooks recording into the metrics above."""
    from loyalty.webhooks import WebhookHooks

    return WebhookHooks(attempt=_webhook_attempt, paused=lambda partner: WEBHOOK_PAUSES.labels(partner).inc())


# ---- /metrics and the multiprocess directory ----------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """Every worker's values in multiprocess mode; this process's otherwise."""
    if multiprocess_dir() is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)
    return collected


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)


def worker_exited() -> None:
    """A worker stops: its live gauges (open connections, subscriptions) stop counting."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())


def prepare_multiprocess_dir(workers: int, environ: dict[str, str] | None = None) -> str | None:
    """For `loyalty serve`: with several workers, the directory their metrics share,
    emptied of any earlier run's files (PROMETHEUS_MULTIPROC_DIR when the operator set
    it, else a fresh temporary directory), and set in the environment the workers
    inherit. With one worker, nothing (unless the operator set the variable)."""
    environ = os.environ if environ is None else environ
    path = environ.get(MULTIPROC_ENV)
    if not path:
        if workers <= 1:
            return None
        path = tempfile.mkdtemp(prefix="loyalty-metrics-")
        environ[MULTIPROC_ENV] = path
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return path


def remove_multiprocess_dir(path: str | None) -> None:
    """After serving: remove a temporary directory prepare_multiprocess_dir made."""
    if path and Path(path).name.startswith("loyalty-metrics-") and Path(path).parent == Path(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)
