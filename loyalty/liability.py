"""The programme's miles liability and breakage, for finance (GraphQL `milesLiability`,
`milesBreakage`; CLI `loyalty report liability|breakage`).

Liability as of a day D (today or later): the redeemable miles still owed to members,
that is what is left of the credit lots (loyalty.lots) good through D or later
(expires_on >= D, remaining > 0), grouped by the month the lots expire, by the
member's CURRENT tier and office. A lot past its expiry date is not counted even before
the expiry job has closed it (a credit is good through its expiry date). The sum over
every group is the members' balances that are not yet expired (SUM(remaining) =
max(balance, 0) per member: `loyalty ledger reconcile`). D in the past is refused: lots
keep what is left now, not what was left on an earlier day.

Breakage by credit month: for the credits (entries holding a lot: flights, bonuses,
partner and goodwill credits, positive rule-change adjustments, debits given back) whose activity date falls in month M,
and that are not reversed, the miles credited and the miles of them that expired
unredeemed so far (what the expiry job took from their lots, CreditLot.expired). The
share is given as integers and in basis points, rounded down (expired * 10000 //
credited; 0 when nothing was credited). A credit counts its FULL miles even when part of
it paid off a negative balance and only the rest became its lot: that part paid for a
debit already made (the redemption a since-reversed credit had funded), so it was used,
not broken, and the credits stay equal to redeemed + expired + held (tests:
test_breakage_of_a_credit_that_paid_a_negative_balance).

Cost: each is ONE grouped query. Liability reads the open lots good on D (the partial
index credit_lot_open_expiry holds only open lots), summed per member and expiry date
in the index's order, each sum joined to its member by key,
and returns at most (expiry dates x tiers x offices) rows: it grows with the open lots,
never with the members or the closed lots; no rollup is kept (a rollup would add a
write to every posting's transaction, the accrual hot path). Breakage reads the credits
of the months asked through the partial index ledger_entry_credit_day (activity_date)
WHERE redeemable_miles > 0, each joined to its lot by key: it grows with the credits of
those months only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import calendar as cal
from loyalty.events import default_connection
from members.access import Caller, Role, require_role
from members.bulk_insert import numbered
from members.codes import by_code
from members.enums import Tier
from members.errors import invalid, not_found
from members.models import Branch, Office

__all__ = [
    "Breakage", "BreakageMonth", "Liability", "LiabilityRow", "MAX_BREAKAGE_MONTHS", "basis_points",
    "miles_breakage", "miles_liability",
]

MAX_BREAKAGE_MONTHS = 120


@dataclass(frozen=True)
class LiabilityRow:
    """Outstanding miles expiring in one month, of the members of one tier in one office."""

    expiry_month: date  # the first day of the month the lots expire in
    tier: Tier
    office_code: str
    branch_code: str
    miles: int
    members: int  # members holding such miles


@dataclass(frozen=True)
class Liability:
    as_of: date
    rows: tuple[LiabilityRow, ...]  # by expiry month, tier (STANDARD first), office code

    @property
    def total_miles(self) -> int:
        return sum(row.miles for row in self.rows)

    async def of_office(self, office_code: str) -> list[LiabilityRow]:
        """The rows of one office (code any case); NOT_FOUND for an unknown office."""
        code = office_code.strip().upper()
        if await by_code(Office, code) is None:  # a code too long for the column is unknown too
            raise not_found(f"no office {code}", "officeCode")
        return [row for row in self.rows if row.office_code == code]

    def by(self, key) -> list[tuple[object, int]]:
        """(key, miles) of the rows grouped by ``key(row)``, in the rows' order of keys."""
        totals: dict[object, int] = defaultdict(int)
        for row in self.rows:
            totals[key(row)] += row.miles
        return sorted(totals.items(), key=lambda item: item[0])


@dataclass(frozen=True)
class BreakageMonth:
    """The credits of one credit month and what of them expired unredeemed so far."""

    month: date  # first day of the credit month
    credits: int  # credit entries (not reversed) with a lot
    credited_miles: int
    expired_miles: int

    @property
    def basis_points(self) -> int:
        return basis_points(self.expired_miles, self.credited_miles)


@dataclass(frozen=True)
class Breakage:
    start: date  # first day of the first month
    end: date  # last day of the last month
    months: tuple[BreakageMonth, ...]  # every month of the range, oldest first (zeros included)

    @property
    def credited_miles(self) -> int:
        return sum(month.credited_miles for month in self.months)

    @property
    def expired_miles(self) -> int:
        return sum(month.expired_miles for month in self.months)

    @property
    def basis_points(self) -> int:
        return basis_points(self.expired_miles, self.credited_miles)


def basis_points(part: int, whole: int) -> int:
    """``part`` / ``whole`` in basis points (1/10,000), rounded down; 0 when ``whole`` is 0."""
    return part * 10_000 // whole if whole > 0 else 0


def _admin(caller: Caller) -> None:
    require_role(caller, (Role.ADMIN,), "the miles liability and breakage are for admins")


async def _rows(connection: BaseDBAsyncClient, sql: str, values: list[date]) -> list[dict]:
    """SQL text with `?` marks run on ``connection``; dates as ISO text on SQLite."""
    if connection.capabilities.dialect == "sqlite":
        values = [value.isoformat() for value in values]
    return await connection.execute_query_dict(numbered(connection, sql), values)


async def miles_liability(caller: Caller, as_of: date | None, *, today: date) -> Liability:
    """The outstanding redeemable miles as of ``as_of`` (default today), by expiry month,
    tier and office. INVALID for a day before today."""
    _admin(caller)
    as_of = as_of or today
    if as_of < today:
        raise invalid(f"asOf {as_of} is before today ({today}): the liability is of the miles open now", "asOf")
    connection = default_connection()
    # remaining > 0 as a literal: the condition of the partial index credit_lot_open_expiry.
    # The lots are summed per (expiry date, member) first, in the index's order, so that
    # each member is read once per expiry date rather than once per lot, and counted by
    # COUNT(*) (a member has one tier and one office).
    rows = await _rows(connection, (
        'SELECT g."expires_on" AS expires_on, m."tier" AS tier, m."office_id" AS office_id, '
        'SUM(g."miles") AS miles, COUNT(*) AS members FROM ('
        'SELECT "expires_on", "member_id", SUM("remaining") AS miles FROM "credit_lot" '
        'WHERE "remaining" > 0 AND "expires_on" >= ? GROUP BY "expires_on", "member_id") g '
        'JOIN "member" m ON m."id" = g."member_id" '
        'GROUP BY g."expires_on", m."tier", m."office_id"'
    ), [as_of])
    offices = {office_id: (code, branch_id) for office_id, code, branch_id in
               await Office.all().values_list("id", "code", "branch_id")}
    branches = dict(await Branch.all().values_list("id", "code"))
    # Lots expire at a month's end, so a month is one expiry date; summed by month all the
    # same, so that lots written otherwise still land in their month.
    cells: dict[tuple[date, int, str], list[int]] = {}
    for row in rows:
        expires_on = row["expires_on"]
        if isinstance(expires_on, str):
            expires_on = date.fromisoformat(expires_on)
        code, branch_id = offices[row["office_id"]]
        key = (cal.month_start(expires_on), int(row["tier"]), code)
        cell = cells.setdefault(key, [0, 0, branch_id])
        cell[0] += int(row["miles"])
        cell[1] += int(row["members"])  # a member's lots of one month share one expiry date
    return Liability(as_of, tuple(
        LiabilityRow(month, Tier(tier), code, branches[branch_id], miles, members)
        for (month, tier, code), (miles, members, branch_id) in sorted(cells.items())
    ))


def months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month + 1


async def miles_breakage(caller: Caller, start: date, end: date) -> Breakage:
    """Breakage of the credit months from ``start``'s to ``end``'s (both included, at
    most MAX_BREAKAGE_MONTHS). INVALID for a reversed or longer range."""
    _admin(caller)
    if end < start:
        raise invalid("to must not be before from", "to")
    count = months_between(start, end)
    if count > MAX_BREAKAGE_MONTHS:
        raise invalid(f"the range may span at most {MAX_BREAKAGE_MONTHS} months", "to")
    # December of year 9999 ends on its 31st (month_end would step past the calendar).
    first, last = cal.month_start(start), end.replace(day=31) if end.month == 12 else cal.month_end(end)
    connection = default_connection()
    # redeemable_miles > 0 as a literal: the condition of the partial index
    # ledger_entry_credit_day; a reversed credit has its reversal (unique reverses_id).
    rows = await _rows(connection, (
        'SELECT e."activity_date" AS day, COUNT(*) AS credits, SUM(e."redeemable_miles") AS credited, '
        'SUM(l."expired") AS expired '
        'FROM "ledger_entry" e JOIN "credit_lot" l ON l."entry_id" = e."id" '
        'WHERE e."redeemable_miles" > 0 AND e."activity_date" >= ? AND e."activity_date" <= ? '
        'AND NOT EXISTS (SELECT 1 FROM "ledger_entry" r WHERE r."reverses_id" = e."id") '
        'GROUP BY e."activity_date"'
    ), [first, last])
    index = first.year * 12 + first.month - 1
    months: dict[date, list[int]] = {date((index + n) // 12, (index + n) % 12 + 1, 1): [0, 0, 0] for n in range(count)}
    for row in rows:
        day = row["day"]
        if isinstance(day, str):
            day = date.fromisoformat(day)
        totals = months[cal.month_start(day)]
        totals[0] += int(row["credits"])
        totals[1] += int(row["credited"])
        totals[2] += int(row["expired"] or 0)
    return Breakage(first, last, tuple(BreakageMonth(m, *totals) for m, totals in months.items()))
