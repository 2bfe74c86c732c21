"""The typed per-request context: who is calling, the programme's calendar, and the
request's scoped read layer (schema.reads: restricted querysets and DataLoaders, so
a list of 50 members costs one office query, not 50)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from strawberry.types import Info as StrawberryInfo

from members.access import Caller
from members.access_log import AccessLog, new_request_key
from schema.reads import Reads


@dataclass
class Context:
    caller: Caller | None
    auth_error: str | None
    timezone: ZoneInfo
    settings: Any
    rules: Any
    reads: Reads = field(init=False)
    extra: dict[str, Any] = field(default_factory=dict)
    # The access audit of the process (members.access_log.AccessLog, or a shared
    # subscription execution's schema.subscriptions.SharedReads; None: not recorded) and
    # this request's key in it (one row per request and member read).
    access_log: AccessLog | None = None
    request_key: int = field(default_factory=new_request_key)
    # WebSocket only: the connection_init payload (strawberry sets it when the field exists).
    connection_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.reads = self.fresh_reads()

    def fresh_reads(self) -> Reads:
        """A read layer for the current caller with no cached rows (the context's own
        at the start; a subscription takes a fresh one for every event)."""
        return Reads(self.caller, rules=self.rules, today=self.today)

    def now(self) -> datetime:
        """The current instant (timezone-aware): settings.clock when a test sets one."""
        clock = getattr(self.settings, "clock", None)
        return clock() if clock is not None else datetime.now(timezone.utc)

    def today(self) -> date:
        """Today in the programme's time zone (LOYALTY_TIMEZONE)."""
        return self.now().astimezone(self.timezone).date()


Info = StrawberryInfo[Context, None]
