"""Claims window: nothing in the future, nothing before six calendar months ago."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.engine import RuleViolation, check_claim_date
from loyalty.rules import load_rules

RULES = load_rules()
D = date.fromisoformat


@pytest.mark.parametrize(
    ("today", "activity"),
    [("2026-08-31", "2026-02-28"), ("2026-08-31", "2026-08-31"), ("2026-08-31", "2026-05-01"),
     ("2026-11-22", "2026-05-22"), ("2028-08-31", "2028-02-29")],
)
def test_accepted(today, activity):
    assert check_claim_date(RULES, D(activity), D(today)) is None


@pytest.mark.parametrize(
    ("today", "activity", "words"),
    [("2026-08-31", "2026-02-27", "before the earliest claim date 2026-02-28"),
     ("2026-08-31", "2026-09-01", "in the future"),
     ("2026-11-22", "2026-05-21", "before the earliest claim date 2026-05-22"),
     ("2026-11-22", "2027-11-22", "in the future")],
)
def test_refused_as_invalid(today, activity, words):
    with pytest.raises(RuleViolation) as info:
        check_claim_date(RULES, D(activity), D(today))
    assert info.value.code == "INVALID"
    assert info.value.field == ("flight", "date")
    assert words in info.value.message


def test_field_can_be_named_by_the_caller():
    with pytest.raises(RuleViolation) as info:
        check_claim_date(RULES, D("2026-01-01"), D("2026-08-31"), field=("activityDate",))
    assert info.value.field == ("activityDate",)
