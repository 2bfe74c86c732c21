"""The VIP care rollup (care.models.OfficeCareCount): what region statistics count of an
office's VIPs, read from at most one row per office, tier and day.

Why: "VIPs contacted within their tier's call interval" and "VIPs at risk of downgrade"
were counted over the member rows of the scope: one index entry per VIP, so an
office's statistics grew with its VIPs and `officeStats` with the whole programme
(2.5 s at 1,000,000 members, bench/RESULTS.md). Both depend on the day, so the rollup
keeps its counts by day (the day of the last contact; the day the tier's validity
ends) and a statistic sums the days on the right side of its cut-off.

Triggers on the member table keep it (migration 0006_care_counts): an insert, a delete
or an update of office, status, tier, last contact, validity or retention totals moves
the member's contribution in the writer's own transaction, whoever the writer is (the
services, the bulk writers, the bench's SQL copies). Which VIP is short of retaining the
tier depends on the rules file's retain thresholds; the triggers read them from
care_retention_threshold, which ``ensure_care_counts`` keeps equal to the rules in
force, rebuilding the rollup from the member table when they change (a rules change:
rare, and a full pass by nature).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q, Subquery
from tortoise.functions import Sum
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from care.models import CareMeasure, CareRetentionThreshold, OfficeCareCount
from loyalty import calendar as cal
from loyalty.rules import TIERS, Rules
from members.enums import Tier
from members.models import Office

__all__ = ["NEVER", "OfficeCareFigures", "ensure_care_counts", "office_care_figures", "rebuild_care_counts"]

# The day the rollup files "never contacted" and the VIP totals under; before any cut-off.
NEVER = date(1, 1, 1)
VIP_TIERS = tuple(Tier[name] for name in TIERS[1:])


@dataclass
class OfficeCareFigures:
    vips: int = 0
    contacted: int = 0
    at_risk: int = 0


def thresholds(rules: Rules) -> dict[int, tuple[int, int]]:
    """The rules' retain thresholds by VIP tier: (miles, segments in hundredths)."""
    return {int(tier): (rules.tier(tier.name).retain_miles, rules.tier(tier.name).retain_segments) for tier in VIP_TIERS}


async def _stored_thresholds(connection: BaseDBAsyncClient) -> dict[int, tuple[int, int]]:
    rows = await CareRetentionThreshold.all().using_db(connection).values_list("tier", "retain_miles", "retain_segments")
    return {tier: (miles, segments) for tier, miles, segments in rows}


async def ensure_care_counts(rules: Rules) -> bool:
    """Make the stored retain thresholds those of ``rules``, rebuilding the rollup when
    they differ (a new database, or a rules file with other thresholds). One read when
    they match; True when it rebuilt. Safe with several processes at once: the second
    waits for the first and finds nothing to do."""
    wanted = thresholds(rules)
    if await _stored_thresholds(connections.get("default")) == wanted:
        return False
    async with in_transaction() as connection:
        await _lock(connection)
        if await _stored_thresholds(connection) == wanted:
            return False
        await CareRetentionThreshold.all().using_db(connection).delete()
        await CareRetentionThreshold.bulk_create(
            [CareRetentionThreshold(tier=tier, retain_miles=miles, retain_segments=segments)
             for tier, (miles, segments) in wanted.items()],
            using_db=connection,
        )
        await rebuild_care_counts(connection)
    return True


async def _lock(connection: BaseDBAsyncClient) -> None:
    """Hold the rollup against the triggers of concurrent writers until commit, so the
    rebuild's count and their changes add up (PostgreSQL: a writer whose trigger waits
    commits after the rebuild's snapshot, so its change is added once, by its trigger).
    SQLite has one writer at a time: a first write takes the database's write lock."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_script("LOCK TABLE office_care_count IN EXCLUSIVE MODE")
    else:
        await connection.execute_script("UPDATE care_retention_threshold SET tier = tier")


async def rebuild_care_counts(connection: BaseDBAsyncClient) -> None:
    """Set the whole rollup from the member table, in the caller's transaction."""
    never = _date_literal(connection, NEVER)
    vip = "m.status = 'ACTIVE' AND m.tier >= 1"
    await connection.execute_script("DELETE FROM office_care_count")
    await connection.execute_script(
        "INSERT INTO office_care_count (office_id, tier, measure, on_date, members) "
        f"SELECT m.office_id, m.tier, {CareMeasure.VIPS:d}, {never}, COUNT(*) FROM member m WHERE {vip} "
        "GROUP BY m.office_id, m.tier "
        f"UNION ALL SELECT m.office_id, m.tier, {CareMeasure.LAST_CONTACT:d}, COALESCE(m.care_last_contact_on, {never}), "
        f"COUNT(*) FROM member m WHERE {vip} GROUP BY m.office_id, m.tier, COALESCE(m.care_last_contact_on, {never}) "
        f"UNION ALL SELECT m.office_id, m.tier, {CareMeasure.SHORT_UNTIL:d}, m.tier_valid_until, COUNT(*) "
        f"FROM member m JOIN care_retention_threshold t ON t.tier = m.tier WHERE {vip} "
        "AND m.tier_valid_until IS NOT NULL AND m.retention_miles < t.retain_miles "
        "AND m.retention_segments < t.retain_segments GROUP BY m.office_id, m.tier, m.tier_valid_until"
    )


def _date_literal(connection: BaseDBAsyncClient, day: date) -> str:
    return f"DATE '{day.isoformat()}'" if connection.capabilities.dialect == "postgres" else f"'{day.isoformat()}'"


async def office_care_figures(offices: QuerySet[Office], rules: Rules, today: date) -> dict[int, OfficeCareFigures]:
    """VIPs, those contacted within their tier's call interval (last contact after
    today - interval) and those at risk of downgrade (validity ending by today +
    at_risk_months, short of both retain thresholds: loyalty.changes.at_risk) in each
    office of ``offices`` (a queryset carrying the caller's scope), by office id.

    One statement per measure, each a range of the rollup's key (office, measure,
    on_date, tier) per office: the VIP totals (a row per tier), the last contacts since
    the earliest cut-off (a row per tier and day of the longest interval), the
    validities ending by the at-risk horizon. A statement over all three would read
    every day the office ever called on."""
    in_scope = Q(office_id__in=Subquery(offices.values("id")))
    cutoffs = {tier: today - timedelta(days=rules.care.call_interval(tier.name)) for tier in VIP_TIERS}
    contacted = Q(*(Q(tier=tier, on_date__gt=day) for tier, day in cutoffs.items()), join_type="OR")
    measures = {
        "vips": Q(measure=CareMeasure.VIPS),
        "contacted": Q(measure=CareMeasure.LAST_CONTACT, on_date__gt=min(cutoffs.values())) & contacted,
        "at_risk": Q(measure=CareMeasure.SHORT_UNTIL, on_date__lte=cal.add_months(today, rules.at_risk_months)),
    }
    figures: dict[int, OfficeCareFigures] = {}
    for name, condition in measures.items():
        rows = await (
            OfficeCareCount.filter(in_scope & condition).annotate(n=Sum("members"))
            .group_by("office_id").values_list("office_id", "n")
        )
        for office_id, n in rows:
            setattr(figures.setdefault(office_id, OfficeCareFigures()), name, int(n or 0))
    return figures
