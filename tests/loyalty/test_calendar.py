"""Calendar-month maths: windows, validity, expiry, claims."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.calendar import (
    add_months,
    credit_expiry,
    earliest_claim_date,
    month_end,
    month_start,
    renewed_valid_until,
    retention_window,
    upgrade_valid_until,
    window,
)

D = date.fromisoformat


@pytest.mark.parametrize(
    ("day", "end"),
    [("2026-01-15", "2026-01-31"), ("2026-02-01", "2026-02-28"), ("2028-02-10", "2028-02-29"),
     ("2026-04-30", "2026-04-30"), ("2026-12-01", "2026-12-31"), ("2100-02-01", "2100-02-28")],
)
def test_month_end(day, end):
    assert month_end(D(day)) == D(end)


def test_month_start():
    assert month_start(D("2026-11-22")) == D("2026-11-01")


@pytest.mark.parametrize(
    ("day", "n", "result"),
    [("2026-01-31", 1, "2026-02-28"), ("2028-01-31", 1, "2028-02-29"), ("2026-03-31", -1, "2026-02-28"),
     ("2026-11-22", 2, "2027-01-22"), ("2026-01-15", -1, "2025-12-15"), ("2026-08-31", -6, "2026-02-28"),
     ("2026-05-20", 0, "2026-05-20"), ("2026-05-20", -24, "2024-05-20")],
)
def test_add_months_clamps_to_month_end(day, n, result):
    assert add_months(D(day), n) == D(result)


def test_window_is_twelve_calendar_months_ending_with_the_activity_month():
    assert window(D("2026-11-22"), 12) == (D("2025-12-01"), D("2026-11-30"))
    assert window(D("2026-01-01"), 12) == (D("2025-02-01"), D("2026-01-31"))
    assert window(D("2026-12-31"), 12) == (D("2026-01-01"), D("2026-12-31"))
    assert window(D("2026-11-22"), 1) == (D("2026-11-01"), D("2026-11-30"))


def in_window(day: str, activity: str = "2026-11-22") -> bool:
    start, end = window(D(activity), 12)
    return start <= D(day) <= end


def test_window_edges():
    assert in_window("2025-12-01")  # first day of the first month
    assert not in_window("2025-11-30")  # the day before
    assert in_window("2026-11-30")  # last day of the activity month
    assert not in_window("2026-12-01")  # the day after


def test_retention_window_ends_with_the_valid_until_month():
    assert retention_window(D("2028-02-29"), 12) == (D("2027-03-01"), D("2028-02-29"))


def test_upgrade_validity_counts_the_upgrade_month_as_the_first():
    assert upgrade_valid_until(D("2026-03-15"), 24) == D("2028-02-29")  # leap day
    assert upgrade_valid_until(D("2026-03-01"), 24) == D("2028-02-29")
    assert upgrade_valid_until(D("2026-03-31"), 24) == D("2028-02-29")
    assert upgrade_valid_until(D("2027-03-15"), 24) == D("2029-02-28")
    assert upgrade_valid_until(D("2026-11-22"), 24) == D("2028-10-31")
    assert upgrade_valid_until(D("2026-11-22"), 1) == D("2026-11-30")


def test_renewal_is_the_month_twelve_months_after():
    assert renewed_valid_until(D("2028-02-29"), 12) == D("2029-02-28")
    assert renewed_valid_until(D("2029-02-28"), 12) == D("2030-02-28")
    assert renewed_valid_until(D("2027-02-28"), 12) == D("2028-02-29")
    assert renewed_valid_until(D("2028-10-31"), 12) == D("2029-10-31")


def test_credit_expiry_is_end_of_the_36th_month_after():
    assert credit_expiry(D("2026-03-15"), 36) == D("2029-03-31")
    assert credit_expiry(D("2026-03-01"), 36) == D("2029-03-31")
    assert credit_expiry(D("2025-02-28"), 36) == D("2028-02-29")
    assert credit_expiry(D("2026-12-31"), 36) == D("2029-12-31")


def test_earliest_claim_date():
    assert earliest_claim_date(D("2026-08-31"), 6) == D("2026-02-28")
    assert earliest_claim_date(D("2026-11-22"), 6) == D("2026-05-22")
    assert earliest_claim_date(D("2028-08-31"), 6) == D("2028-02-29")
    assert earliest_claim_date(D("2026-03-31"), 6) == D("2025-09-30")
    assert earliest_claim_date(D("2026-01-10"), 6) == D("2025-07-10")
