"""Region statistics of VIP care, counted by the database and grouped by office.

Whatever the size of the region or the programme, a statistic reads rollups and a
day's worth of rows, never the member table: tier counts from the office x tier rollup
(members.regions); ACTIVE VIPs, those contacted within their tier's call interval and
those at risk of downgrade from the VIP care rollup kept by day (care.counts); upgrades
and downgrades of the last 30 days (by local day) and open and overdue complaints (in
all, and by the hour they fall due) from the region statistics rollup
(care.region_counts). The figures of a region are the sums of its offices'.

Definitions:

- VIP: an ACTIVE member of tier SILVER or above.
- tier counts: members of each tier, whatever their status (as tierCounts).
- upgrades / downgrades: tier events (any reason) with to_tier above / below
  from_tier whose effective_at falls in the 30 days ending today (today and the 29
  days before, in the programme's time zone), counted at the office the event names.
- contacted within interval: a VIP whose last contact is less than the tier's
  call_interval days ago (care_last_contact_on > today - interval), i.e. one the
  care-call worklist does not list as INTERVAL_PASSED.
- coverage: contacted / VIPs (0 when there are no VIPs).
- open complaints: COMPLAINT feedback in status OPEN or IN_PROGRESS; overdue: of those,
  the ones whose respond_by has passed.
- satisfaction: the scores (1 to 5) given in the same 30 days on REACHED care calls (by
  the call's day) and on resolved feedback (by the day of the resolution), counted at
  the office of the call or the item (care.satisfaction); the average is null without
  scores.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone

from tortoise.expressions import Q

from care.models import FeedbackKind
from care.counts import ensure_care_counts, office_care_figures
from care.region_counts import OPEN_STATUSES, ensure_stats_counts, office_event_figures
from care.satisfaction import satisfaction_by_office
from loyalty.rules import Rules
from members.access import STAFF_ROLES, Caller, Role, region_filter, require_role, restrict_offices
from members.enums import Tier
from members.models import Branch, Office
from members.regions import office_tier_counts

__all__ = ["RegionStats", "office_stats", "open_complaint", "overdue_complaint", "region_stats", "require_staff"]

STATS_DAYS = 30


def open_complaint() -> Q:
    """A complaint still waiting for an answer."""
    return Q(kind=FeedbackKind.COMPLAINT, status__in=list(OPEN_STATUSES))


def overdue_complaint(now: datetime) -> Q:
    """An open complaint whose response time (respond_by) has passed at ``now``."""
    return open_complaint() & Q(respond_by__lt=now)


@dataclass
class RegionStats:
    office_code: str | None
    branch_code: str | None
    name: str
    tier_counts: dict[Tier, int] = field(default_factory=lambda: {tier: 0 for tier in Tier})
    upgrades_last_30_days: int = 0
    downgrades_last_30_days: int = 0
    at_risk_vips: int = 0
    vips: int = 0
    vips_contacted_within_interval: int = 0
    open_complaints: int = 0
    overdue_complaints: int = 0
    satisfaction_scores: int = 0
    satisfaction_total: int = 0

    @property
    def average_satisfaction(self) -> float | None:
        """Mean satisfaction score, 1..5; None without scores."""
        return self.satisfaction_total / self.satisfaction_scores if self.satisfaction_scores else None

    @property
    def care_call_coverage(self) -> float:
        """Share of VIPs contacted within their tier's call interval, 0..1."""
        return self.vips_contacted_within_interval / self.vips if self.vips else 0.0

    def add(self, other: RegionStats) -> None:
        for tier, n in other.tier_counts.items():
            self.tier_counts[tier] += n
        for name in ("upgrades_last_30_days", "downgrades_last_30_days", "at_risk_vips", "vips",
                     "vips_contacted_within_interval", "open_complaints", "overdue_complaints", "satisfaction_scores",
                     "satisfaction_total"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def require_staff(caller: Caller) -> None:
    """Care insights (statistics, greetings) are for office, branch and admin staff."""
    require_role(caller, STAFF_ROLES, "VIP care insights are for office, branch and admin staff")


async def _by_office(
    caller: Caller, columns: dict[str, int], rules: Rules, today: date, now: datetime, zone: tzinfo
) -> dict[int, RegionStats]:
    """Figures of every office with anything to count in the caller's scope, narrowed
    by ``columns`` (office_id / branch_id); keys are office ids."""
    stats: dict[int, RegionStats] = defaultdict(lambda: RegionStats(None, None, ""))
    # Tier counts from the office x tier rollup (members.regions), not by counting members.
    offices = restrict_offices(Office.filter(**{"id" if k == "office_id" else k: v for k, v in columns.items()}), caller)
    for office_id, counts in (await office_tier_counts(offices, group_by="id")).items():
        stats[office_id].tier_counts.update(counts)

    # VIPs, contacted and at risk from the care rollup (care.counts), not by counting members.
    await ensure_care_counts(rules)
    for office_id, figures in (await office_care_figures(offices, rules, today)).items():
        stats[office_id].vips = figures.vips
        stats[office_id].vips_contacted_within_interval = figures.contacted
        stats[office_id].at_risk_vips = figures.at_risk

    first_day = today - timedelta(days=STATS_DAYS - 1)
    for office_id, scores in (await satisfaction_by_office(offices, first_day, today)).items():
        stats[office_id].satisfaction_scores = scores.scores
        stats[office_id].satisfaction_total = scores.total

    # Tier changes and complaints from the region statistics rollup (care.region_counts).
    await ensure_stats_counts(zone)
    for office_id, events in (await office_event_figures(offices, first_day, today, now)).items():
        stats[office_id].upgrades_last_30_days = events.upgrades
        stats[office_id].downgrades_last_30_days = events.downgrades
        stats[office_id].open_complaints = events.open_complaints
        stats[office_id].overdue_complaints = events.overdue_complaints

    return stats


async def region_stats(
    caller: Caller,
    rules: Rules,
    today: date,
    office_code: str | None = None,
    branch_code: str | None = None,
    *,
    now: datetime | None = None,
    timezone: tzinfo = dt_timezone.utc,
) -> RegionStats:
    """The figures of one office or branch in the caller's scope, or of the caller's
    whole scope (admin: the whole programme) when neither is named. ForbiddenError for
    a region outside the scope; INVALID for an unknown code."""
    require_staff(caller)
    columns = await region_filter(caller, office_code, branch_code)
    total = await _region_header(caller, columns)
    for office in (await _by_office(caller, columns, rules, today, now or datetime.now(dt_timezone.utc), timezone)).values():
        total.add(office)
    return total


async def _region_header(caller: Caller, columns: dict[str, int]) -> RegionStats:
    """Codes and name of the region the figures are for."""
    office_id = columns.get("office_id") or (caller.office_id if caller.role is Role.OFFICE else None)
    if office_id is not None:
        office = await Office.get(id=office_id).prefetch_related("branch")
        return RegionStats(office.code, office.branch.code, office.name)
    branch_id = columns.get("branch_id") or (caller.branch_id if caller.role is Role.BRANCH else None)
    if branch_id is not None:
        branch = await Branch.get(id=branch_id)
        return RegionStats(None, branch.code, branch.name)
    return RegionStats(None, None, "All branches")


async def office_stats(
    caller: Caller,
    rules: Rules,
    today: date,
    branch_code: str | None = None,
    *,
    now: datetime | None = None,
    timezone: tzinfo = dt_timezone.utc,
) -> list[RegionStats]:
    """One row per office in the caller's scope (narrowed to a branch in it), by office
    code; offices with nothing to count have a row of zeros."""
    require_staff(caller)
    columns = await region_filter(caller, None, branch_code)
    offices = await restrict_offices(Office.filter(**columns), caller).order_by("code").prefetch_related("branch")
    figures = await _by_office(caller, columns, rules, today, now or datetime.now(dt_timezone.utc), timezone)
    rows = []
    for office in offices:
        row = RegionStats(office.code, office.branch.code, office.name)
        if office.id in figures:
            row.add(figures[office.id])
        rows.append(row)
    return rows
