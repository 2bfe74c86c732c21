"""The typed per-request context: who is calling, the programme's calendar, and
per-request DataLoaders (so a list of 50 members costs one office query, not 50)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from members.access import Caller, nothing, restrict_members
from loyalty.models import LedgerEntry
from members.models import Branch, Member, Office


def _by_column_loader(model: Any, column: str = "id", restrict: Callable[[Any], Any] | None = None) -> DataLoader:
    """Batch `model` rows by one (unique) column; None where there is no row."""

    async def load(keys: list[int]) -> list[Any]:
        query = model.filter(**{f"{column}__in": keys})
        if restrict is not None:
            query = restrict(query)
        rows = {getattr(row, column): row for row in await query}
        return [rows.get(key) for key in keys]

    return DataLoader(load_fn=load)


class Loaders:
    """Per-request DataLoaders, each made on first use (a subscription makes a fresh set
    for every event, and most events touch none of them)."""

    def __init__(self, caller: Caller | None) -> None:
        self.caller = caller

    @cached_property
    def office(self) -> DataLoader:
        return _by_column_loader(Office)

    @cached_property
    def branch(self) -> DataLoader:
        return _by_column_loader(Branch)

    @cached_property
    def member(self) -> DataLoader:
        # Members reached through other objects are scoped like any member read.
        caller = self.caller
        return _by_column_loader(Member, restrict=(lambda q: restrict_members(q, caller)) if caller else nothing)

    # Ledger entries are only reached through a member the caller may see.
    @cached_property
    def entry(self) -> DataLoader:
        return _by_column_loader(LedgerEntry)

    @cached_property
    def bonus_of(self) -> DataLoader:
        return _by_column_loader(LedgerEntry, "bonus_for_id")

    @cached_property
    def reversal_of(self) -> DataLoader:
        return _by_column_loader(LedgerEntry, "reverses_id")


@dataclass
class Context:
    caller: Caller | None
    auth_error: str | None
    timezone: ZoneInfo
    settings: Any
    rules: Any
    loaders: Loaders = field(init=False)
    extra: dict[str, Any] = field(default_factory=dict)
    # WebSocket only: the connection_init payload (strawberry sets it when the field exists).
    connection_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.caller)

    def now(self) -> datetime:
        """The current instant (timezone-aware): settings.clock when a test sets one."""
        clock = getattr(self.settings, "clock", None)
        return clock() if clock is not None else datetime.now(timezone.utc)

    def today(self) -> date:
        """Today in the programme's time zone (LOYALTY_TIMEZONE)."""
        return self.now().astimezone(self.timezone).date()


Info = StrawberryInfo[Context, None]
