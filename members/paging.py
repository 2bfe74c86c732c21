"""Keyset pages with opaque cursors, shared by every list of the API.

A cursor is the sort key of the last row seen, tagged with the ordering it belongs
to, base64-encoded. Paging by key, never by offset, means no row is skipped or
repeated when rows are added while a client pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from members.errors import invalid
from members.ids import BIGINT_IDS

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 50


Count = Callable[[], Awaitable[int]]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. `count` computes the total of the whole list; it runs only
    when a client asks for totalCount (a COUNT over the list's filter costs more than
    the page itself on a large programme), and at most once per page."""

    items: list[T]
    cursors: list[str]
    has_next_page: bool
    count: Count | None = None
    _total: list[int] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def of(cls, rows: Sequence[T], size: int, cursor: Callable[[T], str], count: Count | None = None) -> Page[T]:
        """The page of `rows` fetched with one row more than `size` (the limit+1
        probe): the first `size` rows, and whether there is more."""
        items = list(rows[:size])
        return cls(items, [cursor(row) for row in items], len(rows) > size, count)

    async def total_count(self) -> int:
        """The total of the whole list (0 for a list that has none), computed on first use."""
        if not self._total:
            self._total.append(await self.count() if self.count is not None else 0)
        return self._total[0]

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


def after_key(columns: Sequence[str], key: Sequence[Any], descending: bool = False) -> Q:
    """Rows after `key` in the order of `columns`, all ascending or all descending,
    written so that an index on those columns can seek to the key: the redundant
    `first >= key` (`<=` descending) opens the index range at the key on SQLite and
    PostgreSQL alike, and the OR after it only trims the rows equal to the key."""
    beyond, reaching = ("lt", "lte") if descending else ("gt", "gte")
    trimmed = Q(**{f"{columns[-1]}__{beyond}": key[-1]})
    for column, value in reversed(list(zip(columns[:-1], key[:-1]))):
        trimmed = Q(**{f"{column}__{beyond}": value}) | (Q(**{column: value}) & trimmed)
    return Q(**{f"{columns[0]}__{reaching}": key[0]}) & trimmed


def after_ranges(columns: Sequence[str], key: Sequence[Any]) -> list[Q]:
    """The rows after `key` in the (ascending) order of `columns`, as disjoint ranges in
    that order, each an equality on a prefix of the key and one `>`: (a = x, b = y,
    c > z), (a = x, b > y), (a > x). Read one after the other, each is a seek and a
    range of an index on the columns. after_key's single condition is not, beyond its
    first column: the database seeks to `a >= x` and filters every row of that first
    value before the key one by one, and how many share it grows with the table (at
    1,000,000 members, 3,477 rows of one family name read to return 101)."""
    ranges = []
    for size in range(len(columns), 0, -1):
        equal = {column: value for column, value in zip(columns[:size - 1], key[:size - 1])}
        ranges.append(Q(**equal, **{f"{columns[size - 1]}__gt": key[size - 1]}))
    return ranges


def encode_cursor(ordering: str, key: list[Any]) -> str:
    raw = json.dumps([ordering, key], separators=(",", ":"), default=str, ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: str, size: int) -> list[Any]:
    """The key inside a cursor, or INVALID when it is not one of ours for this ordering."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, key = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise invalid("after is not a valid cursor", "after") from None
    if tag != ordering or not isinstance(key, list) or len(key) != size:
        raise invalid("after is a cursor of another list or ordering", "after")
    return key


def page_size(first: int | None, default: int = DEFAULT_PAGE) -> int:
    """`first` checked against MAX_PAGE; `default` when the client gave none."""
    if first is None:
        return default
    if not 0 <= first <= MAX_PAGE:
        raise invalid(f"first must be between 0 and {MAX_PAGE}", "first")
    return first


# ---- newest first: records by an instant, then id (care calls, feedback, statements) ----
#
# The cursor is the (instant, id) of the last row, so rows added while a client pages are
# neither skipped nor repeated.


def _instant_key(after: str, ordering: str) -> tuple[datetime, int]:
    instant, pk = decode_cursor(after, ordering, 2)
    if not isinstance(instant, str) or isinstance(pk, bool) or not isinstance(pk, int) or not 0 <= pk < BIGINT_IDS:
        raise invalid("after is not a valid cursor", "after")
    try:
        moment = datetime.fromisoformat(instant)
    except ValueError:
        raise invalid("after is not a valid cursor", "after") from None
    if moment.tzinfo is None:
        raise invalid("after is not a valid cursor", "after")
    return moment.astimezone(timezone.utc), pk


async def newest_first(
    query: QuerySet, column: str, ordering: str, first: int | None, after: str | None, default: int
) -> Page:
    """A page of `query` ordered by `column` (a datetime) then id, both descending,
    with the total count of `query` (counted only when asked)."""
    size = page_size(first, default)
    count = query.count
    if after:
        moment, pk = _instant_key(after, ordering)
        query = query.filter(after_key((column, "id"), (moment, pk), descending=True))
    rows = await query.order_by(f"-{column}", "-id").limit(size + 1)
    return Page.of(rows, size, lambda row: newest_first_cursor(row, column, ordering), count)


def newest_first_cursor(row, column: str, ordering: str) -> str:
    """The cursor of a row in a newest_first page (its instant and id)."""
    return encode_cursor(ordering, [getattr(row, column).isoformat(), row.id])
