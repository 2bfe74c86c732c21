"""CSV of the finance reports and of a rules change, for the CLI (OPERATIONS.md):
`loyalty report liability|breakage` and `loyalty rules preview|apply FILE --csv PATH`."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from typing import TextIO

from members.access import Caller, Role
from members.errors import DomainError

LIABILITY_COLUMNS = ("expiry_month", "tier", "office_code", "branch_code", "miles", "members")
BREAKAGE_COLUMNS = ("credit_month", "credits", "credited_miles", "expired_miles", "breakage_basis_points")
RULES_COLUMNS = (
    "card_number", "tier_before", "tier_after", "valid_until", "redeemable_miles", "qualifying_miles",
    "qualifying_segments", "days",
)
CLI_ADMIN = Caller(Role.ADMIN, "cli")


class ReportError(Exception):
    """A report the operator asked for wrongly (one line)."""


def _month(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def segments(hundredths: int) -> str:
    """Hundredths of a segment as an exact decimal: 100 -> "1", -150 -> "-1.5"."""
    return str((Decimal(hundredths) / 100).normalize()) if hundredths else "0"


async def export_liability(out: TextIO, as_of: date | None, today: date) -> tuple[date, int, int]:
    """The liability as CSV (LIABILITY_COLUMNS), a row per expiry month, tier and office,
    then a totals line; (as of, rows, total miles)."""
    from loyalty.liability import miles_liability

    try:
        liability = await miles_liability(CLI_ADMIN, as_of, today=today)
    except DomainError as error:
        raise ReportError(error.message) from None
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LIABILITY_COLUMNS)
    for row in liability.rows:
        writer.writerow([_month(row.expiry_month), row.tier.name, row.office_code, row.branch_code, row.miles, row.members])
    writer.writerow(["total", "", "", "", liability.total_miles, ""])
    return liability.as_of, len(liability.rows), liability.total_miles


async def export_breakage(out: TextIO, start: date, end: date) -> tuple[int, int, int]:
    """Breakage as CSV (BREAKAGE_COLUMNS), a row per credit month, then a totals line;
    (credited, expired, basis points) of the range."""
    from loyalty.liability import miles_breakage

    try:
        breakage = await miles_breakage(CLI_ADMIN, start, end)
    except DomainError as error:
        raise ReportError(error.message) from None
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BREAKAGE_COLUMNS)
    for month in breakage.months:
        writer.writerow([_month(month.month), month.credits, month.credited_miles, month.expired_miles, month.basis_points])
    writer.writerow(["total", sum(m.credits for m in breakage.months), breakage.credited_miles, breakage.expired_miles,
                     breakage.basis_points])
    return breakage.credited_miles, breakage.expired_miles, breakage.basis_points


def rules_csv(out: TextIO):
    """A writer of changed members (RULES_COLUMNS) for loyalty.rulechange.change_rules(each=...)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(RULES_COLUMNS)

    def each(difference) -> None:
        writer.writerow([
            difference.card_number, difference.tier_before, difference.tier_after, difference.valid_until or "",
            difference.redeemable_miles, difference.qualifying_miles, segments(difference.qualifying_segments),
            difference.days,
        ])

    return each
