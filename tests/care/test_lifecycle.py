"""Lifecycle stages: the pure rule of [care.lifecycle] on constructed activity counts."""

from __future__ import annotations

from datetime import date

import pytest

from care.segments import lifecycle_stage
from loyalty.calendar import add_months
from loyalty.rules import LifecycleRules, load_rules
from members.enums import LifecycleStage

RULES = load_rules().care.lifecycle
TODAY = date(2026, 11, 20)
LONG_AGO = date(2020, 1, 5)


def stage(recent: int, previous: int, enrolled_on: date = LONG_AGO, rules: LifecycleRules = RULES) -> LifecycleStage:
    return lifecycle_stage(enrolled_on, recent, previous, TODAY, rules)


def test_the_shipped_rule_numbers():
    assert (RULES.period_months, RULES.new_months, RULES.decline_percent, RULES.growth_percent) == (6, 6, 50, 150)


@pytest.mark.parametrize(
    ("recent", "previous", "expected"),
    [
        (2, 4, LifecycleStage.STABLE),  # exactly 50 % is not below 50 %
        (1, 4, LifecycleStage.DECLINING),  # 25 %
        (0, 4, LifecycleStage.DECLINING),
        (6, 4, LifecycleStage.GROWING),  # exactly 150 %
        (5, 4, LifecycleStage.STABLE),  # 125 %: more, but not enough to be growth
        (4, 4, LifecycleStage.STABLE),
        (0, 0, LifecycleStage.DORMANT),
        (3, 0, LifecycleStage.GROWING),  # anything after nothing
        (1, 0, LifecycleStage.GROWING),
        (3, 2, LifecycleStage.GROWING),  # 150 %
        (2, 2, LifecycleStage.STABLE),
    ],
)
def test_transitions_of_a_member_enrolled_long_ago(recent, previous, expected):
    assert stage(recent, previous) is expected


def test_enrolled_five_months_ago_is_new_whatever_the_activity():
    five_months_ago = date(2026, 6, 20)
    assert stage(0, 0, five_months_ago) is LifecycleStage.NEW
    assert stage(9, 0, five_months_ago) is LifecycleStage.NEW


def test_new_ends_when_new_months_have_passed():
    six_months_ago = add_months(TODAY, -6)  # 2026-05-20
    assert stage(0, 0, six_months_ago) is LifecycleStage.DORMANT
    assert stage(0, 0, date(2026, 5, 21)) is LifecycleStage.NEW
    assert stage(1, 4, date(2026, 5, 19)) is LifecycleStage.DECLINING


def test_other_rule_numbers_are_used():
    strict = LifecycleRules(period_months=3, new_months=0, decline_percent=90, growth_percent=200)
    assert stage(3, 4, TODAY, strict) is LifecycleStage.DECLINING  # 75 % < 90 %; new_months 0: never NEW
    assert stage(7, 4, LONG_AGO, strict) is LifecycleStage.STABLE  # 175 % < 200 %
    assert stage(8, 4, LONG_AGO, strict) is LifecycleStage.GROWING
