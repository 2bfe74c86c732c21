"""Loyalty reads: a member's ledger and tier history, the tier-change event log, and
entries by id for DataLoaders. Keyset paging (members.paging): no row is skipped or
repeated while rows are added between pages.

- member_ledger / member_tier_history: newest first (id descending); the caller's
  right to see the member is the schema's (it passes a member it resolved in scope).
- tier_changes: the replayable event log, OLDEST first by position (the event id,
  which commits in order: see loyalty.events), strictly after the cursor, scoped
  like the member lists. Its cursor encodes the position, so a subscription resumes
  from any edge's cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tortoise.queryset import QuerySet

from loyalty.models import LedgerEntry, LedgerEntryKind, TierEvent
from members.access import Caller, in_region, member_scope, region_filter, restrict_by_member_region
from members.errors import ForbiddenError, invalid
from members.ids import BIGINT_IDS
from members.paging import Page, decode_cursor, encode_cursor, page_size

__all__ = [
    "cursor_at",
    "cursor_for",
    "entries_by_ids",
    "member_ledger",
    "member_tier_history",
    "position_from_cursor",
    "tier_change_test",
    "tier_changes",
]

LEDGER_ORDER = "ledger"
HISTORY_ORDER = "tierHistory"
CHANGES_ORDER = "tierChanges"
DEFAULT_MEMBER_PAGE = 20  # Member.ledger and Member.tierHistory (contract: first = 20)
DEFAULT_CHANGES_PAGE = 50  # Query.tierChanges (contract: first = 50)


def _key_id(cursor: str, ordering: str) -> int:
    """The id inside a cursor of `ordering` (INVALID on anything else)."""
    (value,) = decode_cursor(cursor, ordering, 1)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < BIGINT_IDS:
        raise invalid("after is not a valid cursor", "after")
    return value


async def _newest_first(query: QuerySet, ordering: str, first: int | None, after: str | None) -> Page:
    size = page_size(first, DEFAULT_MEMBER_PAGE)
    if after:
        query = query.filter(id__lt=_key_id(after, ordering))
    rows = await query.order_by("-id").limit(size + 1)
    return Page.of(rows, size, lambda row: encode_cursor(ordering, [row.id]))


async def member_ledger(
    member_id: int, first: int | None, after: str | None, kinds: list[LedgerEntryKind] | None
) -> Page[LedgerEntry]:
    """The member's entries, newest first, optionally only of `kinds` (an empty list
    matches nothing)."""
    query = LedgerEntry.filter(member_id=member_id)
    if kinds is not None:
        query = query.filter(kind__in=[LedgerEntryKind(kind) for kind in kinds])
    return await _newest_first(query, LEDGER_ORDER, first, after)


async def member_tier_history(member_id: int, first: int | None, after: str | None) -> Page[TierEvent]:
    """The member's tier changes, newest first."""
    return await _newest_first(TierEvent.filter(member_id=member_id), HISTORY_ORDER, first, after)


# ---- the event log -----------------------------------------------------------------


def cursor_for(event: TierEvent) -> str:
    """The cursor of an event in the log: resume with after: to get what follows it."""
    return cursor_at(event.id)


def cursor_at(position: int) -> str:
    """The cursor of a position in the log (0: before the first event)."""
    return encode_cursor(CHANGES_ORDER, [position])


def position_from_cursor(cursor: str) -> int:
    """The log position inside a tierChanges cursor (INVALID on anything else)."""
    return _key_id(cursor, CHANGES_ORDER)


def _check_not_blocked(caller: Caller) -> None:
    if caller.blocked:
        raise ForbiddenError("this token's scope is not valid")


def _scoped_events(caller: Caller) -> QuerySet[TierEvent]:
    """Events the caller may see, by the same rule as members.access.restrict_members,
    applied to the office and branch the member had at the time of the event."""
    _check_not_blocked(caller)
    return restrict_by_member_region(TierEvent.all(), caller)


async def tier_change_test(
    caller: Caller, office_code: str | None, branch_code: str | None, member_id: int | None = None
) -> Callable[[TierEvent], bool]:
    """tier_changes' rule for events already loaded (the live feed reads each event once
    for every subscriber): the caller's scope (members.access.can_see_member on the
    member's office and branch at the time of the event), the officeCode/branchCode
    filters (FORBIDDEN outside the scope, as for tier_changes) and, optionally, one member."""
    _check_not_blocked(caller)
    columns = await region_filter(caller, office_code, branch_code)
    scope = member_scope(caller, "member_id")  # can_see_member's rule, decided once
    if scope is None:
        return lambda event: False
    wanted = tuple({**scope, **columns, **({} if member_id is None else {"member_id": member_id})}.items())
    conflicting = any(scope.get(column, value) != value for column, value in columns.items())
    if conflicting or (member_id is not None and scope.get("member_id", member_id) != member_id):
        return lambda event: False
    # Called for every subscriber and every event: the common shapes without a loop.
    if not wanted:
        return lambda event: True
    if len(wanted) == 1:
        ((column, value),) = wanted
        return lambda event: getattr(event, column) == value
    return lambda event: all(getattr(event, column) == value for column, value in wanted)


async def tier_changes(
    caller: Caller, after: str | None, first: int | None, office_code: str | None, branch_code: str | None
) -> Page[TierEvent]:
    """Events visible to the caller strictly after the cursor's position (from the start
    without one), oldest first. officeCode/branchCode outside the caller's scope is
    FORBIDDEN (members.access.region_filter)."""
    size = page_size(first, DEFAULT_CHANGES_PAGE)
    position = position_from_cursor(after) if after else 0
    query = _scoped_events(caller)
    query = await in_region(query, caller, office_code, branch_code)
    rows = await query.filter(id__gt=position).order_by("id").limit(size + 1)
    return Page.of(rows, size, cursor_for)


# ---- DataLoader batch --------------------------------------------------------------


async def entries_by_ids(ids: Sequence[int]) -> list[LedgerEntry | None]:
    """The entries with these ids, in the same order (None where there is none), in
    one query."""
    wanted = {int(i) for i in ids}
    if not wanted:
        return []
    found = {entry.id: entry for entry in await LedgerEntry.filter(id__in=list(wanted))}
    return [found.get(int(i)) for i in ids]
