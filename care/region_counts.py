"""The region statistics rollup (care.models.OfficeStatsCount): upgrades and downgrades of
the last 30 days and open and overdue complaints of an office, read from a bounded
number of rows per office whatever the number of events and complaints.

Why: counted over tier_event and feedback, `officeStats` read every tier event of the
programme's last 30 days and every open complaint (8,800 and 7,900 rows at 1,000,000
members, 25 and 32 ms on SQLite: bench/RESULTS.md), so it grew with the programme.

- Tier changes are kept by the local day of effective_at (the programme's time zone):
  the last 30 days are at most 30 rows per office and direction. Triggers on tier_event
  (migration 0020_stats_counts) find the local day in ``stats_zone``, which
  ``ensure_stats_counts`` keeps equal to the time zone in force (rebuilding the tier
  change rows from tier_event when it changes: a new database, or a new LOYALTY_TIMEZONE).
- Open complaints are kept per office in all (one row), and by the UTC hour of their
  respond_by. Overdue = open - those due after the current hour (one row per hour of
  the response time still to come) - those due later in the current hour (read from
  feedback by respond_by: the complaints of one hour). Triggers on feedback keep both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, time, timedelta, tzinfo
from datetime import timezone as dt_timezone

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery
from tortoise.functions import Sum
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from care.models import Feedback, FeedbackKind, FeedbackStatus, OfficeStatsCount, StatsMeasure, StatsZone
from members.models import Office

__all__ = ["OfficeEventFigures", "calls_due", "day_number", "ensure_stats_counts", "office_event_figures", "rebuild_stats_counts",
           "zone_rows"]

EPOCH = date(1970, 1, 1)
HOUR = 3600
# The days stats_zone covers: tier events outside them count on no day (-1).
ZONE_YEARS = (1970, 2100)
NO_DUE_HOUR = 1_000_000_000  # the slot of an open complaint without respond_by: never overdue
OPEN_STATUSES = (FeedbackStatus.OPEN, FeedbackStatus.IN_PROGRESS)


@dataclass
class OfficeEventFigures:
    upgrades: int = 0
    downgrades: int = 0
    open_complaints: int = 0
    overdue_complaints: int = 0


def day_number(day: date) -> int:
    return day.toordinal() - EPOCH.toordinal()


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


@lru_cache(maxsize=8)
def zone_rows(zone: tzinfo) -> list[tuple[int, int]]:
    """(since, day) rows of ``zone``: the start of its first local day in ZONE_YEARS,
    then the start of each local day that does not begin 86,400 s after the one before
    (an offset change)."""
    rows: list[tuple[int, int]] = []
    day, last = date(ZONE_YEARS[0], 1, 1), date(ZONE_YEARS[1], 1, 1)
    previous = None
    while day < last:
        start = int(datetime.combine(day, time(0), tzinfo=zone).timestamp())
        if previous is None or start - previous != 86400:
            rows.append((start, day_number(day)))
        previous = start
        day += timedelta(days=1)
    return rows


async def _stored_zone(connection: BaseDBAsyncClient) -> str | None:
    return await StatsZone.all().using_db(connection).order_by("since").first().values_list("zone", flat=True)


async def ensure_stats_counts(zone: tzinfo) -> bool:
    """Make stats_zone that of ``zone``, rebuilding the rollup when it was another (or
    none). One read when it matches; True when it rebuilt. Safe with several processes
    at once: the second waits for the first and finds nothing to do."""
    name = zone_name(zone)
    if await _stored_zone(connections.get("default")) == name:
        return False
    rows = zone_rows(zone)
    async with in_transaction() as connection:
        await _lock(connection)
        if await _stored_zone(connection) == name:
            return False
        await StatsZone.all().using_db(connection).delete()
        await StatsZone.bulk_create([StatsZone(zone=name, since=since, day=day) for since, day in rows], using_db=connection)
        await rebuild_stats_counts(connection)
    return True


async def _lock(connection: BaseDBAsyncClient) -> None:
    """Hold the rollup against the triggers of concurrent writers until commit (as
    care.counts does): a rebuild's count and their changes then add up."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("LOCK TABLE office_stats_count IN EXCLUSIVE MODE")
    else:
        await connection.execute_script("UPDATE stats_zone SET day = day")


def _epoch(connection: BaseDBAsyncClient, column: str) -> str:
    if connection.capabilities.dialect == "postgres":
        return f"CAST(floor(extract(epoch FROM {column})) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


async def rebuild_stats_counts(connection: BaseDBAsyncClient) -> None:
    """Set the whole rollup from tier_event, feedback and member, in the caller's
    transaction (the same rows the triggers of migrations 0020 and 0021 keep)."""
    epoch = _epoch(connection, "e.effective_at")
    day = (f"COALESCE((SELECT z.day + ({epoch} - z.since) / 86400 FROM stats_zone z WHERE z.since <= {epoch} "
           "ORDER BY z.since DESC LIMIT 1), -1)")
    direction = "CASE WHEN e.to_tier > e.from_tier THEN 0 ELSE 1 END"
    open_ = "f.kind = 'COMPLAINT' AND f.status IN ('OPEN', 'IN_PROGRESS')"
    hour = f"COALESCE({_epoch(connection, 'f.respond_by')} / {HOUR}, {NO_DUE_HOUR})"
    await connection.execute_script("DELETE FROM office_stats_count")
    await connection.execute_script(
        "INSERT INTO office_stats_count (office_id, measure, slot, members) "
        f"SELECT m.office_id, {StatsMeasure.CALLS_DUE:d}, 0, COUNT(*) FROM member m WHERE m.status = 'ACTIVE' "
        "AND m.care_priority >= 0 GROUP BY m.office_id "
        f"UNION ALL SELECT office_id, measure, slot, COUNT(*) FROM (SELECT e.office_id AS office_id, {direction} AS measure, "
        f"{day} AS slot FROM tier_event e WHERE e.to_tier <> e.from_tier) AS changes GROUP BY office_id, measure, slot "
        f"UNION ALL SELECT f.office_id, {StatsMeasure.OPEN_COMPLAINTS:d}, 0, COUNT(*) FROM feedback f WHERE {open_} "
        "GROUP BY f.office_id "
        f"UNION ALL SELECT office_id, {StatsMeasure.COMPLAINTS_DUE:d}, slot, COUNT(*) FROM (SELECT f.office_id AS office_id, "
        f"{hour} AS slot FROM feedback f WHERE {open_}) AS due GROUP BY office_id, slot"
    )


async def _sums(scope: Q, condition: Q) -> dict[tuple[int, int], int]:
    rows = await (
        OfficeStatsCount.filter(scope & condition).annotate(n=Sum("members"))
        .group_by("office_id", "measure").values_list("office_id", "measure", "n")
    )
    return {(office_id, measure): int(n or 0) for office_id, measure, n in rows}


async def calls_due(offices: QuerySet[Office]) -> int:
    """ACTIVE members whose stored worklist state is due, in the offices of ``offices``
    (a queryset carrying the caller's scope): one row per office."""
    row = await OfficeStatsCount.filter(office_id__in=Subquery(offices.values("id")), measure=StatsMeasure.CALLS_DUE) \
        .annotate(n=Sum("members")).first().values_list("n", flat=True)
    return int(row or 0)


async def office_event_figures(offices: QuerySet[Office], first_day: date, today: date,
                               now: datetime) -> dict[int, OfficeEventFigures]:
    """Upgrades and downgrades from ``first_day`` to ``today`` (local days, both
    included), open complaints and those overdue at ``now`` (respond_by before it), in
    each office of ``offices`` (a queryset carrying the caller's scope), by office id.

    Three statements on the rollup, each a range of its key (office, measure, slot) per
    office, and one on feedback, a range of (office_id, respond_by) per office: the
    items falling due in the rest of the current hour."""
    scope = Q(office_id__in=Subquery(offices.values("id")))
    this_hour = int(now.timestamp()) // HOUR
    next_hour = datetime.fromtimestamp((this_hour + 1) * HOUR, dt_timezone.utc)
    changes = await _sums(scope, Q(measure__in=[StatsMeasure.UPGRADES, StatsMeasure.DOWNGRADES],
                                   slot__gte=day_number(first_day), slot__lte=day_number(today)))
    opened = await _sums(scope, Q(measure=StatsMeasure.OPEN_COMPLAINTS))
    later = await _sums(scope, Q(measure=StatsMeasure.COMPLAINTS_DUE, slot__gt=this_hour))
    # Kind and status are checked here, not in the statement, so that the planner has
    # no other index to prefer than (office_id, respond_by).
    this_hour_later: Counter = Counter(
        office_id for office_id, kind, status in await Feedback.filter(scope, respond_by__gte=now, respond_by__lt=next_hour)
        .values_list("office_id", "kind", "status")
        if kind == FeedbackKind.COMPLAINT and status in OPEN_STATUSES
    )
    figures: dict[int, OfficeEventFigures] = defaultdict(OfficeEventFigures)
    for (office_id, measure), n in changes.items():
        if measure == StatsMeasure.UPGRADES:
            figures[office_id].upgrades = n
        else:
            figures[office_id].downgrades = n
    for (office_id, _), n in opened.items():
        not_due = later.get((office_id, StatsMeasure.COMPLAINTS_DUE), 0) + this_hour_later[office_id]
        figures[office_id].open_complaints = n
        figures[office_id].overdue_complaints = n - not_due
    return dict(figures)
