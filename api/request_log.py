"""One log line per request, and the request id.

ObserveRequests (the outermost middleware) gives every HTTP request and WebSocket
connection a RequestRecord (schema.observe) for its life: its id is the client's
X-Request-ID when that is a sane token, a fresh one otherwise, and goes back in the
response's X-Request-ID header. The GraphQL layer fills in the operation name and the
caller's role, the schema the outcome (a refusal's code, or "error"); at the end one
line is logged on `loyalty.request`, and the GraphQL request is counted
(api.metrics). A refusal (FORBIDDEN, UNAUTHENTICATED, ...) is that one line, with its
message; an internal error is logged with its traceback and the request id by the
schema (schema.build) and the line says outcome=error.

Logging is set up once per process (configure_logging, from api.asgi): text or JSON
(LOYALTY_LOG_FORMAT) on stderr for the `loyalty` loggers and uvicorn's; uvicorn's own
access log is off (api.cli.UVICORN_OPTIONS). A line costs one call into logging, its
text is formatted only when a handler writes it.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
import time
import traceback
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.observe import INTERNAL_ERROR, OK, RequestRecord, current_request

log = logging.getLogger("loyalty.request")
_INFO = logging.INFO
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@+=/-]{1,128}")
REQUEST_ID_HEADER = b"x-request-id"
# Probes and scrapes are not logged unless they fail.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_INTERNAL_ERROR_BODY = b'{"errors":[{"message":"Internal error.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}'


def new_request_id() -> str:
    # 64 random bits from the process's generator (no system call per request, as
    # os.urandom makes): an id to find a request's lines by, not a secret.
    return f"{random.getrandbits(64):016x}"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is 1-128 characters of [A-Za-z0-9._:@+=/-]
    (nothing that could forge a log line), else a new id."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return new_request_id()


class ObserveRequests:
    def __init__(self, app: ASGIApp, *, graphql_path: str = "/graphql", metrics: Any = None) -> None:
        self.app = app
        self.graphql_path = graphql_path
        self.metrics = metrics  # api.metrics.RequestMetrics, or None without metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", ()))
        record = RequestRecord(request_id, "http" if kind == "http" else "ws")
        token = current_request.set(record)
        start = time.perf_counter()
        status = 0
        accepted = False
        header = (REQUEST_ID_HEADER, request_id.encode("ascii"))

        async def observed_send(message: Message) -> None:
            nonlocal status, accepted
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            elif kind == "websocket.close":
                status = message.get("code", 1000)
            elif kind == "websocket.accept":
                accepted = True
                if self.metrics is not None:
                    self.metrics.websocket_opened()
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:  # noqa: BLE001 - logged with the request id, answered 500
            record.failed()
            log.error("unhandled error (request %s) %s %s\n%s", request_id, scope.get("method", "WS"), scope["path"],
                      traceback.format_exc().rstrip(), extra={"request_id": request_id})
            if kind == "http" and status == 0:
                status = 500
                await send({"type": "http.response.start", "status": 500, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()), header,
                ]})
                await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
        finally:
            current_request.reset(token)
            if accepted and self.metrics is not None:
                self.metrics.websocket_closed()
            self._finish(scope, record, status, time.perf_counter() - start)

    def _finish(self, scope: Scope, record: RequestRecord, status: int, seconds: float) -> None:
        path = scope["path"]
        if record.transport == "http" and status >= 400 and record.outcome == OK:
            record.outcome = INTERNAL_ERROR if status >= 500 else f"HTTP_{status}"
        # GraphQL requests are POSTs (GET /graphql is GraphiQL; OPTIONS a CORS preflight).
        if self.metrics is not None and path == self.graphql_path and scope.get("method") == "POST":
            self.metrics.observe(record.operation, record.outcome, seconds, record.db_seconds)
        if not log.isEnabledFor(_INFO) or (path in QUIET_PATHS and status < 400):
            return
        level = logging.ERROR if record.outcome == INTERNAL_ERROR else _INFO
        method = scope.get("method", "WS")
        # The line formatted here, once, as an f-string (no arguments left for logging to
        # apply): a line per request is the hottest log call of the process.
        log.log(
            level,
            f"{record.request_id} {method} {path} op={record.operation or '-'} role={record.role or '-'} "
            f"outcome={record.outcome} status={status} ms={seconds * 1000:.1f} db_ms={record.db_seconds * 1000:.1f} "
            f"queries={record.db_queries}{f' message={record.message!r}' if record.message else ''}",
            extra={"request": record, "method": method, "path": path, "status": status, "seconds": seconds},
        )


# ---- logging set-up ---------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and for request lines
    the request's fields; a traceback goes in `traceback`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        request: RequestRecord | None = getattr(record, "request", None)
        if request is not None:
            entry.update(
                message="request", request_id=request.request_id, transport=request.transport,
                method=record.method, path=record.path, operation=request.operation, role=request.role,
                outcome=request.outcome, status=record.status, duration_ms=round(record.seconds * 1000, 2),
                db_ms=round(request.db_seconds * 1000, 2), db_queries=request.db_queries,
            )
            if request.message:
                entry["error"] = request.message
        else:
            entry["message"] = record.getMessage()
            request_id = getattr(record, "request_id", None)
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


    converter = time.gmtime


class TextFormatter(logging.Formatter):
    converter = time.gmtime

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._stamp: tuple[int, str] = (-1, "")  # (second, its text): one strftime a second, not one a line

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """logging's default text (2026-12-02 08:11:03,123, UTC), its seconds' part made
        once per second."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (second, time.strftime(self.default_time_format, self.converter(second)))
        return self.default_msec_format % (stamp[1], record.msecs)


LOGGERS = ("loyalty", "uvicorn", "uvicorn.error", "strawberry")


def configure_logging(log_format: str = "text", level: str = "info") -> None:
    """Once per server process: the app's and uvicorn's loggers to stderr, in text or
    JSON. Idempotent."""
    # What no line of ours prints, not gathered for every record (the logging
    # documentation's "Optimization"): the caller's file and line, thread and process.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.set_name("loyalty")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if h.get_name() != "loyalty"]
        if name == "uvicorn.error":
            logger.handlers = []  # propagates to "uvicorn"
            continue
        if name == "uvicorn":
            logger.handlers = [handler]
        else:
            logger.addHandler(handler)
            logger.setLevel(level.upper())
        logger.propagate = False
