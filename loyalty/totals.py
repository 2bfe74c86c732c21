"""Qualifying totals over a date window, summed by the database."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Coalesce, Sum

from loyalty.models import LedgerEntry
from members.bulk_insert import numbered

_WINDOW_SQL = (
    'SELECT COALESCE(SUM("qualifying_miles"), 0), COALESCE(SUM("qualifying_segments"), 0) FROM "ledger_entry" '
    'WHERE "member_id" = ? AND "activity_date" >= ? AND "activity_date" <= ?'
)


async def window_totals(
    member_id: int,
    start: date,
    end: date,
    *,
    connection: BaseDBAsyncClient | None = None,
    exclude_entry_ids: tuple[int, ...] = (),
) -> tuple[int, int]:
    """(qualifying miles, qualifying segments in hundredths) of entries with an activity
    date in [start, end]. Reversed entries and their reversals cancel out, since a
    REVERSAL carries the negated qualifying values on the original's activity date.
    Without exclusions (every posting's case) it is SQL text: no query builder."""
    if not exclude_entry_ids:
        connection = connection or LedgerEntry._choose_db()
        _, rows = await connection.execute_query(numbered(connection, _WINDOW_SQL), [member_id, start, end])
        return int(rows[0][0] or 0), int(rows[0][1] or 0)
    query = LedgerEntry.filter(member_id=member_id, activity_date__gte=start, activity_date__lte=end)
    if exclude_entry_ids:
        query = query.exclude(id__in=exclude_entry_ids)
    if connection is not None:
        query = query.using_db(connection)
    row = await query.annotate(
        miles=Coalesce(Sum("qualifying_miles"), 0), segments=Coalesce(Sum("qualifying_segments"), 0)
    ).first().values("miles", "segments")
    return int(row["miles"] or 0), int(row["segments"] or 0)


async def window_totals_by_member(member_ids: Collection[int], start: date, end: date) -> dict[int, tuple[int, int]]:
    """window_totals of many members over the same window, in ONE grouped query: member
    id -> (qualifying miles, qualifying segments in hundredths); a member without
    entries in the window is absent (its totals are (0, 0))."""
    if not member_ids:
        return {}
    rows = await (
        LedgerEntry.filter(member_id__in=list(member_ids), activity_date__gte=start, activity_date__lte=end)
        .annotate(miles=Coalesce(Sum("qualifying_miles"), 0), segments=Coalesce(Sum("qualifying_segments"), 0))
        .group_by("member_id")
        .values("member_id", "miles", "segments")
    )
    return {row["member_id"]: (int(row["miles"] or 0), int(row["segments"] or 0)) for row in rows}
