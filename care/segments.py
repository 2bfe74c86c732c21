"""Lifecycle stages and value segments: pure decisions and the daily refresh job.

Both are a daily snapshot, written on the member row by `loyalty care refresh`
(``refresh_segments``) with the day it was computed for (care_refreshed_on); a posting
does not refresh its member.

Periods (all ending with ``as_of``, both ends of a period included):

- recent:   (as_of - period_months, as_of]
- previous: (as_of - 2 * period_months, as_of - period_months]
- value window: (as_of - value_window_months, as_of]
- NEW: enrolled after as_of - new_months (the member has not yet had new_months).

Value segments rank every member of an office, whatever their status, so n is the
office's member count.

Month arithmetic is loyalty.calendar.add_months (clamped to the month's end).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from datetime import timezone as dt_timezone

from tortoise.expressions import Q, Subquery
from tortoise.functions import Coalesce, Count, Sum
from tortoise.transactions import in_transaction

from care.calls import recompute_care_state
from loyalty import calendar as cal
from loyalty.changes import chunked
from loyalty.models import LedgerEntry, LedgerEntryKind
from loyalty.rules import LifecycleRules, Rules
from members.enums import LifecycleStage, Tier, ValueSegment
from members.models import Member, Office

__all__ = ["RefreshSummary", "lifecycle_stage", "refresh_segments", "value_segments"]

EARNING_KINDS = (LedgerEntryKind.FLIGHT, LedgerEntryKind.PARTNER)


# ---- pure decisions ----------------------------------------------------------------


def lifecycle_stage(
    enrolled_on: date, recent: int, previous: int, today: date, rules: LifecycleRules
) -> LifecycleStage:
    """The stage by the rule of the [care.lifecycle] table: NEW within new_months of
    enrolment, DORMANT without activity in both periods, DECLINING when recent is below
    decline_percent of previous, GROWING when recent is above previous and at least
    growth_percent of it, else STABLE. ``recent`` and ``previous`` count earning
    activities (flights and partner credits not reversed) of the two periods."""
    if enrolled_on > cal.add_months(today, -rules.new_months):
        return LifecycleStage.NEW
    if recent == 0 and previous == 0:
        return LifecycleStage.DORMANT
    if recent * 100 < previous * rules.decline_percent:
        return LifecycleStage.DECLINING
    if recent > previous and recent * 100 >= previous * rules.growth_percent:
        return LifecycleStage.GROWING
    return LifecycleStage.STABLE


def value_segments(
    miles_by_member: Mapping[int, int], *, high_percent: int, medium_percent: int
) -> dict[int, ValueSegment]:
    """Segments of ONE office's members from their trailing qualifying miles.

    Members are ranked by miles (highest first), ties by id (lowest first); of n
    members, rank r (1-based) is HIGH when r * 100 <= n * high_percent, else MEDIUM
    when r * 100 <= n * medium_percent, else LOW. A member without miles (0 or less)
    is LOW wherever they rank."""
    n = len(miles_by_member)
    ranked = sorted(miles_by_member.items(), key=lambda item: (-item[1], item[0]))
    segments: dict[int, ValueSegment] = {}
    for rank, (member_id, miles) in enumerate(ranked, start=1):
        if miles > 0 and rank * 100 <= n * high_percent:
            segments[member_id] = ValueSegment.HIGH
        elif miles > 0 and rank * 100 <= n * medium_percent:
            segments[member_id] = ValueSegment.MEDIUM
        else:
            segments[member_id] = ValueSegment.LOW
    return segments


# ---- the refresh job ---------------------------------------------------------------


@dataclass(frozen=True)
class Periods:
    """The date bounds of one refresh (each period is (start, end], see the module docstring)."""

    as_of: date
    recent_start: date
    previous_start: date
    value_start: date

    @classmethod
    def of(cls, rules: Rules, as_of: date) -> Periods:
        months = rules.care.lifecycle.period_months
        return cls(
            as_of=as_of,
            recent_start=cal.add_months(as_of, -months),
            previous_start=cal.add_months(as_of, -2 * months),
            value_start=cal.add_months(as_of, -rules.care.value_window_months),
        )


@dataclass(frozen=True)
class ActivityTotals:
    recent: int = 0
    previous: int = 0
    miles: int = 0


@dataclass(frozen=True)
class RefreshSummary:
    offices: int
    members: int
    stages: Mapping[LifecycleStage, int]
    segments: Mapping[ValueSegment, int]
    # A dry run's members whose stage or segment would change, and the first few of
    # them: (card number, (stage, segment) before, after). 0 and () for a real run.
    changed: int = 0
    sample: tuple[tuple[str, tuple[str | None, str | None], tuple[str, str]], ...] = ()


async def office_activity(office_id: int, periods: Periods) -> dict[int, ActivityTotals]:
    """ONE grouped aggregate over the ledger of the office's members: per member, the
    earning activities (FLIGHT and PARTNER entries that have not been reversed) of the
    recent and the previous period, and the qualifying miles of the value window
    (reversals included, so a reversed flight counts nothing)."""
    def office_members():
        return Subquery(Member.filter(office_id=office_id).values("id"))

    reversed_ids = LedgerEntry.filter(member_id__in=office_members(), reverses_id__isnull=False).values("reverses_id")
    earning = Q(kind__in=list(EARNING_KINDS)) & ~Q(id__in=Subquery(reversed_ids))
    previous = Q(activity_date__lte=periods.recent_start, activity_date__gt=periods.previous_start)
    start = min(periods.previous_start, periods.value_start)
    rows = await (
        LedgerEntry.filter(
            member_id__in=office_members(),
            activity_date__gt=start,
            activity_date__lte=periods.as_of,
        )
        .annotate(
            recent=Count("id", _filter=earning & Q(activity_date__gt=periods.recent_start)),
            previous=Count("id", _filter=earning & previous),
            miles=Coalesce(Sum("qualifying_miles", _filter=Q(activity_date__gt=periods.value_start)), 0),
        )
        .group_by("member_id")
        .values("member_id", "recent", "previous", "miles")
    )
    return {
        row["member_id"]: ActivityTotals(int(row["recent"] or 0), int(row["previous"] or 0), int(row["miles"] or 0))
        for row in rows
    }


def _enrolled_on(enrolled_at: datetime, zone: tzinfo) -> date:
    if enrolled_at.tzinfo is None:
        enrolled_at = enrolled_at.replace(tzinfo=dt_timezone.utc)
    return enrolled_at.astimezone(zone).date()


@dataclass
class _Changes:
    """The members whose stage or segment a refresh changes: how many, the first few."""
    count: int = 0
    sample: list = field(default_factory=list)
    sample_size: int = 5


async def refresh_office(
    office_id: int, rules: Rules, periods: Periods, zone: tzinfo, *, dry_run: bool = False,
    changes: _Changes | None = None,
) -> dict[int, tuple[LifecycleStage, ValueSegment]]:
    """Stage and segment of every member of one office, written in one short
    transaction as a few grouped UPDATEs (one per (stage, segment) pair present, and
    per pair whose stage changed: lifecycle_since = as_of). The VIPs whose stage changed
    have their worklist state recomputed in the same transaction (a DECLINING or
    DORMANT VIP is due a call: care.calls). ``dry_run``: decided and counted into
    ``changes``, nothing written."""
    rows = await Member.filter(office_id=office_id).values_list(
        "id", "enrolled_at", "lifecycle_stage", "tier", "value_segment", "card_number"
    )
    if not rows:
        return {}
    members = [(member_id, enrolled_at) for member_id, enrolled_at, *_ in rows]
    activity = await office_activity(office_id, periods)
    none = ActivityTotals()
    care = rules.care
    segments = value_segments(
        {member_id: activity.get(member_id, none).miles for member_id, _ in members},
        high_percent=care.value_high_percent, medium_percent=care.value_medium_percent,
    )
    decided: dict[int, tuple[LifecycleStage, ValueSegment]] = {}
    groups: dict[tuple[LifecycleStage, ValueSegment, bool], list[int]] = {}
    changed_vips: list[int] = []
    for member_id, enrolled_at, old_stage, tier, _, _ in rows:
        totals = activity.get(member_id, none)
        stage = lifecycle_stage(_enrolled_on(enrolled_at, zone), totals.recent, totals.previous, periods.as_of, care.lifecycle)
        decided[member_id] = (stage, segments[member_id])
        changed = LifecycleStage(old_stage) is not stage
        groups.setdefault((stage, segments[member_id], changed), []).append(member_id)
        if changed and Tier(tier).is_vip:
            changed_vips.append(member_id)
    if changes is not None:
        for member_id, _, stage, _, segment, card in rows:
            before = (_value(stage), _value(segment))
            after = tuple(item.value for item in decided[member_id])
            if before != after:
                changes.count += 1
                if len(changes.sample) < changes.sample_size:
                    changes.sample.append((card, before, after))
    if dry_run:
        return decided
    async with in_transaction() as connection:
        for (stage, segment, changed), ids in groups.items():
            values = {"lifecycle_stage": stage, "value_segment": segment, "care_refreshed_on": periods.as_of}
            if changed:
                values["lifecycle_since"] = periods.as_of
            for chunk in chunked(ids):
                # office_id again: a member moved to another office since the read keeps
                # what their new office's run gives them (or its last snapshot).
                await Member.filter(id__in=chunk, office_id=office_id).using_db(connection).update(**values)
        await recompute_care_state(connection, changed_vips, rules, periods.as_of)
    return decided


async def refresh_segments(
    rules: Rules,
    as_of: date,
    progress: Callable[[int, int], None] | None = None,
    *,
    timezone: tzinfo = dt_timezone.utc,
    dry_run: bool = False,
) -> RefreshSummary:
    """Write lifecycle_stage, value_segment and care_refreshed_on = as_of for every
    member, office by office: per office one read of its members, ONE aggregate query
    of their ledger and one short write transaction, so memory is bounded by the largest
    office. ``timezone`` is the programme's (it turns enrolled_at into a date).
    Running it again for the same day writes the same values. ``dry_run``: the same
    counts and the members it would change, nothing written."""
    periods = Periods.of(rules, as_of)
    office_ids = await Office.all().order_by("id").values_list("id", flat=True)
    stages = {stage: 0 for stage in LifecycleStage}
    segments = {segment: 0 for segment in ValueSegment}
    members = 0
    changed = _Changes()
    if progress:
        progress(0, len(office_ids))
    for done, office_id in enumerate(office_ids, start=1):
        decided = await refresh_office(office_id, rules, periods, timezone, dry_run=dry_run, changes=changed if dry_run else None)
        members += len(decided)
        for stage, segment in decided.values():
            stages[stage] += 1
            segments[segment] += 1
        if progress:
            progress(done, len(office_ids))
    return RefreshSummary(offices=len(office_ids), members=members, stages=stages, segments=segments,
                          changed=changed.count, sample=tuple(changed.sample))


def _value(item) -> str | None:
    """An enum column read with values_list: the enum, its value, or None."""
    return None if item is None else getattr(item, "value", item)
