"""What the schema tells the server about the request it is executing: the server
(api.request_log) puts a RequestRecord in `current_request` for the life of each
request; the schema notes a refusal or an internal error in it, and the server writes
the one log line and the metrics from it. Outside a request (tests executing the
schema directly, the CLI) there is no record and the schema logs for itself."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# Outcomes besides the refusal codes (UNAUTHENTICATED, FORBIDDEN, ..., GRAPHQL_VALIDATION).
OK = "ok"
INTERNAL_ERROR = "error"


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    transport: str = "http"  # "http" or "ws"
    execution: Any = None  # strawberry's ExecutionContext of the (latest) operation
    role: str | None = None  # the caller's role once the token is read; None: no token
    outcome: str = OK  # OK, a refusal's code, or INTERNAL_ERROR
    message: str | None = None  # the first refusal's message, for the log line
    db_seconds: float = 0.0  # time spent in database calls (api.metrics)
    db_queries: int = 0

    @property
    def operation(self) -> str | None:
        """The operation's name: the request's operationName, else the document's
        first operation's name; None for an anonymous one or before parsing."""
        try:
            return self.execution.operation_name if self.execution is not None else None
        except Exception:  # noqa: BLE001 - a document that did not parse has no name
            return None

    def refused(self, code: str, message: str) -> None:
        if self.outcome == OK:
            self.outcome, self.message = code, message[:300]

    def failed(self) -> None:
        self.outcome = INTERNAL_ERROR


current_request: ContextVar[RequestRecord | None] = ContextVar("loyalty_request", default=None)
