"""Satisfaction scores: 1 (very unhappy) to 5 (very happy), told by the member on a care
call that reached them or when their feedback is resolved, and averaged per region in
the statistics (care.stats) over the last 30 days.

Each score is also added to its office's day (care.models.OfficeSatisfactionDay) in the
transaction that records it, so a region's average reads at most 30 rows per office
instead of every call and resolution of the region.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Subquery
from tortoise.functions import Sum
from tortoise.queryset import QuerySet

from care.models import OfficeSatisfactionDay
from members.errors import invalid
from members.models import Office

__all__ = ["LOWEST", "HIGHEST", "Satisfaction", "add_score", "checked_score", "satisfaction_by_office"]

LOWEST, HIGHEST = 1, 5


def checked_score(score: int | None, *field: str) -> int | None:
    """``score`` when it is a whole number from 1 to 5 (or None); INVALID otherwise."""
    if score is None:
        return None
    if type(score) is not int or not LOWEST <= score <= HIGHEST:
        raise invalid(f"satisfaction must be a whole number from {LOWEST} to {HIGHEST}", *field)
    return score


async def add_score(connection: BaseDBAsyncClient, office_id: int, day: date, score: int) -> None:
    """Count ``score`` on the office's day, in the caller's transaction: one upsert, so
    two first scores of a day at once both count."""
    postgres = connection.capabilities.dialect == "postgres"
    marks = "$1, $2, 1, $3" if postgres else "?, ?, 1, ?"
    await connection.execute_query(
        "INSERT INTO office_satisfaction_day (office_id, on_date, scores, score_total) "
        f"VALUES ({marks}) ON CONFLICT (office_id, on_date) DO UPDATE SET "
        "scores = office_satisfaction_day.scores + 1, score_total = office_satisfaction_day.score_total + excluded.score_total",
        [office_id, day if postgres else day.isoformat(), score],
    )


@dataclass
class Satisfaction:
    scores: int = 0
    total: int = 0


async def satisfaction_by_office(offices: QuerySet[Office], start: date, end: date) -> dict[int, Satisfaction]:
    """Scores given from ``start`` to ``end`` (both included) in each office of
    ``offices`` (a queryset carrying the caller's scope), by office id: one statement."""
    rows = await (
        OfficeSatisfactionDay.filter(office_id__in=Subquery(offices.values("id")), on_date__gte=start, on_date__lte=end)
        .annotate(n=Sum("scores"), total=Sum("score_total")).group_by("office_id").values_list("office_id", "n", "total")
    )
    return {office_id: Satisfaction(int(n or 0), int(total or 0)) for office_id, n, total in rows}
