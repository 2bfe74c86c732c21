"""What is kept on the member row from the member's tier and qualifying activity, in the
transaction of every change of them.

Every writer that posts qualifying miles or segments or changes a tier (flight accrual,
reversal, tier override, tier review, and the bulk writers after a batch) ends its
transaction with ``members_changed``; the one exception is the hot path of a flight that
changes no tier, which adds its miles to the retention totals in its own UPDATE and
ends with ``activity_added``. It stores the retention totals (the qualifying
miles and segments of the current tier's retention window: the window_months ending
with tier_valid_until's month), so that "at risk of downgrade" is an SQL predicate
(``at_risk``), and then tells the listeners of other areas (the care worklist's state,
care.calls), which import this module and register; loyalty never imports them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.functions import Coalesce, Sum
from tortoise.transactions import in_transaction

from loyalty import calendar as cal
from loyalty import engine
from loyalty.models import LedgerEntry
from loyalty.rules import TIERS, Rules
from members.enums import Tier
from members.models import Member

__all__ = [
    "CHUNK", "activity_added", "at_risk", "chunked", "listen", "members_changed", "refresh_members",
    "retention_windows_containing", "store_retention_totals", "update_each",
]

CHUNK = 500  # ids per statement, well inside every database's parameter limit

Listener = Callable[[BaseDBAsyncClient, Sequence[int], Rules, date], Awaitable[None]]
_listeners: list[Listener] = []


def listen(listener: Listener) -> Listener:
    """Register ``listener(connection, member_ids, rules, today)``, called by every
    ``members_changed`` after the retention totals are stored. Usable as a decorator."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def chunked(ids: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


async def update_each(connection: BaseDBAsyncClient, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    """One parameterised ``UPDATE member SET columns... WHERE id = ?`` executed for every
    row (values in ``columns`` order, then the id): per-member values in one round trip."""
    if not rows:
        return
    executor = connection.executor_class(model=Member, db=connection)
    table = Member._meta.basetable
    query = connection.query_class.update(table)
    for index, column in enumerate(columns):
        query = query.set(column, executor.parameter(index))
    query = query.where(table.id == executor.parameter(len(columns)))
    await connection.execute_many(str(query), [list(row) for row in rows])


def retention_windows_containing(activity: date, rules: Rules) -> tuple[date, date]:
    """The validUntil dates (first, last) whose retention window (loyalty.calendar.
    retention_window) holds ``activity``: from ``activity``'s month to the window_months-th
    month counting it. 2026-11-22, 12 months -> (2026-11-01, 2027-10-31). A posting of
    that day counts in the retention totals of a member whose validUntil is in between."""
    first = cal.month_start(activity)
    return first, cal.month_end(cal.add_months(first, rules.window_months - 1))


async def store_retention_totals(connection: BaseDBAsyncClient, member_ids: Sequence[int], rules: Rules) -> None:
    """Recompute retention_miles / retention_segments of these members from the ledger:
    per chunk one read of their validUntil and ONE grouped sum (members sharing a
    validUntil month share a window), then one batched update."""
    for ids in chunked(list(member_ids)):
        rows = await Member.filter(id__in=ids).using_db(connection).values_list("id", "tier_valid_until")
        windows: dict[date, list[int]] = {}
        for member_id, valid_until in rows:
            if valid_until is not None:
                windows.setdefault(cal.month_start(valid_until), []).append(member_id)
        totals: dict[int, tuple[int, int]] = {}
        if windows:
            condition = Q()
            for index, (month, members) in enumerate(windows.items()):
                start, end = cal.retention_window(month, rules.window_months)
                term = Q(member_id__in=members, activity_date__gte=start, activity_date__lte=end)
                condition = term if index == 0 else condition | term
            sums = await (
                LedgerEntry.filter(condition).using_db(connection)
                .annotate(miles=Coalesce(Sum("qualifying_miles"), 0), segments=Coalesce(Sum("qualifying_segments"), 0))
                .group_by("member_id").values_list("member_id", "miles", "segments")
            )
            totals = {member_id: (int(miles or 0), int(segments or 0)) for member_id, miles, segments in sums}
        await update_each(
            connection, ("retention_miles", "retention_segments"),
            [(*totals.get(member_id, (0, 0)), member_id) for member_id, _ in rows],
        )


async def members_changed(
    connection: BaseDBAsyncClient, member_ids: Sequence[int], rules: Rules, today: date
) -> None:
    """The members' tier or qualifying activity changed in this transaction: store their
    retention totals and tell the listeners. ``today`` is the programme's day of the change."""
    if not member_ids:
        return
    await store_retention_totals(connection, member_ids, rules)
    for listener in _listeners:
        await listener(connection, member_ids, rules, today)


async def activity_added(
    connection: BaseDBAsyncClient, before: Member, after: Member, rules: Rules, today: date
) -> None:
    """A posting of this transaction added qualifying activity to a member without
    changing the tier, and added it to the retention totals itself (``before``/``after``:
    the row without and with it). Listeners follow the tier state and whether the member
    is at risk of downgrade (loyalty.engine.is_at_risk), the only one of their facts
    such a posting can move: they are told only when it moved."""
    def risk(row: Member) -> bool:
        return engine.is_at_risk(
            rules, Tier(row.tier).name, row.tier_valid_until, today, row.retention_miles, row.retention_segments
        )

    if risk(before) != risk(after):
        for listener in _listeners:
            await listener(connection, [after.id], rules, today)


async def refresh_members(member_ids: Sequence[int], rules: Rules, today: date) -> None:
    """``members_changed`` for members a bulk writer (the demo) wrote without the
    services, one short transaction per chunk."""
    for ids in chunked(list(member_ids)):
        async with in_transaction() as connection:
            await members_changed(connection, ids, rules, today)


def at_risk(rules: Rules, today: date) -> Q:
    """Members at risk of downgrade (loyalty.engine.is_at_risk) by the stored retention
    totals: an elite tier ending within at_risk_months of today (or already due for
    review) whose retention totals are below the tier's retain thresholds in both."""
    below = [
        Q(tier=Tier[name], retention_miles__lt=rules.tier(name).retain_miles,
          retention_segments__lt=rules.tier(name).retain_segments)
        for name in TIERS[1:]
    ]
    return Q(tier_valid_until__lte=cal.add_months(today, rules.at_risk_months)) & Q(*below, join_type="OR")
