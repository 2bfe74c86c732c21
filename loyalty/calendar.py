"""Calendar-month date maths for windows, validity, expiry and claims.

All dates are plain ``datetime.date`` values already in the programme's time
zone; nothing here knows about clocks or time zones. Month arithmetic clamps
to the month's end (January 31 + 1 month = February 28/29), which is what
"six calendar months back" and "the last day of the month" need.
"""

from __future__ import annotations

from datetime import date, timedelta

__all__ = [
    "add_months",
    "credit_expiry",
    "earliest_claim_date",
    "month_end",
    "month_start",
    "renewed_valid_until",
    "retention_window",
    "upgrade_valid_until",
    "window",
]


def month_start(d: date) -> date:
    """First day of ``d``'s month."""
    return d.replace(day=1)


def month_end(d: date) -> date:
    """Last day of ``d``'s month."""
    # The 28th plus four days is always in the next month.
    next_month = d.replace(day=28) + timedelta(days=4)
    return next_month - timedelta(days=next_month.day)


def add_months(d: date, n: int) -> date:
    """``d`` moved by ``n`` calendar months (negative: back), day clamped to the month's end."""
    index = d.year * 12 + (d.month - 1) + n
    first = date(index // 12, index % 12 + 1, 1)
    return first.replace(day=min(d.day, month_end(first).day))


def window(activity: date, months: int) -> tuple[date, date]:
    """The ``months`` calendar months ending with ``activity``'s month, both ends included.

    2026-11-22, 12 -> (2025-12-01, 2026-11-30).
    """
    start = add_months(month_start(activity), -(months - 1))
    return start, month_end(activity)


def retention_window(valid_until: date, months: int) -> tuple[date, date]:
    """The window a retention review counts: the months ending with ``valid_until``'s month."""
    return window(valid_until, months)


def upgrade_valid_until(upgrade_date: date, validity_months: int) -> date:
    """Last day of the ``validity_months``-th month, the upgrade month being the first.

    2026-03-15, 24 -> 2028-02-29.
    """
    return month_end(add_months(month_start(upgrade_date), validity_months - 1))


def renewed_valid_until(old_valid_until: date, renewal_months: int) -> date:
    """Last day of the month ``renewal_months`` after ``old_valid_until``'s month.

    2028-02-29, 12 -> 2029-02-28.
    """
    return month_end(add_months(month_start(old_valid_until), renewal_months))


def credit_expiry(activity: date, months: int) -> date:
    """Last day a credit is good: end of the ``months``-th month after the activity month.

    2026-03-15, 36 -> 2029-03-31.
    """
    return month_end(add_months(month_start(activity), months))


def earliest_claim_date(today: date, months: int) -> date:
    """The same day ``months`` calendar months back, clamped to that month's end.

    2026-08-31, 6 -> 2026-02-28; 2026-11-22, 6 -> 2026-05-22.
    """
    return add_months(today, -months)
