"""Newest-first keyset pages of care records (calls by called_at, feedback by
submitted_at): the cursor is the (instant, id) of the last row, so rows added while a
client pages are neither skipped nor repeated."""

from __future__ import annotations

from datetime import datetime, timezone

from tortoise.queryset import QuerySet

from members.errors import invalid
from members.ids import BIGINT_IDS
from members.paging import Page, after_key, decode_cursor, encode_cursor, page_size


def _key(after: str, ordering: str) -> tuple[datetime, int]:
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
        moment, pk = _key(after, ordering)
        query = query.filter(after_key((column, "id"), (moment, pk), descending=True))
    rows = await query.order_by(f"-{column}", "-id").limit(size + 1)
    return Page.of(rows, size, lambda row: newest_first_cursor(row, column, ordering), count)


def newest_first_cursor(row, column: str, ordering: str) -> str:
    """The cursor of a row in a newest_first page (its instant and id)."""
    return encode_cursor(ordering, [getattr(row, column).isoformat(), row.id])
