"""Qualifying totals over a date window, summed by the database."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Coalesce, Sum

from loyalty.models import LedgerEntry

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
    REVERSAL carries the negated qualifying values on the original's activity date."""
    # SQL text: this runs once per qualifying posting (an import posts thousands), and
    # the query builder costs several times the indexed sum itself.
    connection = connection or LedgerEntry._meta.db
    postgres = connection.capabilities.dialect == "postgres"

    def mark(n: int) -> str:
        return f"${n}" if postgres else "?"

    values: list = [member_id, start, end] if postgres else [member_id, start.isoformat(), end.isoformat()]
    sql = (
        'SELECT COALESCE(SUM("qualifying_miles"), 0) AS "miles", COALESCE(SUM("qualifying_segments"), 0) AS "segments" '
        f'FROM "{LedgerEntry._meta.db_table}" '
        f'WHERE "member_id" = {mark(1)} AND "activity_date" >= {mark(2)} AND "activity_date" <= {mark(3)}'
    )
    if exclude_entry_ids:
        sql += ' AND "id" NOT IN (' + ", ".join(mark(4 + n) for n in range(len(exclude_entry_ids))) + ")"
        values += list(exclude_entry_ids)
    row = (await connection.execute_query_dict(sql, values))[0]
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
