"""due_reasons: why a VIP is due a care call, decided from the member's facts alone
(no database). Default rules: call intervals PLATINUM 30, GOLD 60, SILVER 90 days;
upgrade_call_days 30; at_risk_months 6."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from care.calls import CareCallReason as R
from care.calls import CareFacts, DueReason, _sort_key, due_reasons
from loyalty.rules import load_rules
from members.enums import LifecycleStage, Tier

RULES = load_rules()
TODAY = date(2026, 6, 15)
LONG_AGO = date(2024, 1, 10)  # tier_since well outside upgrade_call_days


def facts(tier: Tier = Tier.GOLD, *, since: date = LONG_AGO, until: date | None = date(2027, 12, 31),
          last: date | None = None, follow_up: date | None = None, downgraded: bool = False, pk: int = 1,
          recorded: date | None = None, stage: LifecycleStage = LifecycleStage.STABLE,
          stage_since: date | None = None) -> CareFacts:
    return CareFacts(pk, tier, since, until, last, follow_up, downgraded, recorded_on=recorded, lifecycle_stage=stage,
                     lifecycle_since=stage_since)


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def test_the_default_intervals_are_those_the_tests_assume():
    assert [RULES.care.call_interval(t) for t in ("SILVER", "GOLD", "PLATINUM", "STANDARD")] == [90, 60, 30, None]
    assert RULES.care.upgrade_call_days == 30 and RULES.at_risk_months == 6


@pytest.mark.parametrize(
    ("tier", "interval"), [(Tier.PLATINUM, 30), (Tier.GOLD, 60), (Tier.SILVER, 90)]
)
def test_interval_passed_exactly_at_the_tiers_interval(tier, interval):
    # One day short of the interval: not due.
    assert due_reasons(facts(tier, last=days_ago(interval - 1)), RULES, TODAY, False) == []
    # Exactly the interval: due since today.
    assert due_reasons(facts(tier, last=days_ago(interval)), RULES, TODAY, False) == [DueReason(R.INTERVAL_PASSED, TODAY)]
    # Ten days over: due since ten days ago.
    assert due_reasons(facts(tier, last=days_ago(interval + 10)), RULES, TODAY, False) == [
        DueReason(R.INTERVAL_PASSED, days_ago(10))
    ]


def test_a_gold_member_reached_45_days_ago_is_due_only_at_platinum():
    last = days_ago(45)
    assert due_reasons(facts(Tier.PLATINUM, last=last), RULES, TODAY, False) == [DueReason(R.INTERVAL_PASSED, days_ago(15))]
    assert due_reasons(facts(Tier.GOLD, last=last), RULES, TODAY, False) == []
    assert due_reasons(facts(Tier.SILVER, last=last), RULES, TODAY, False) == []


def test_standard_members_are_never_due():
    assert due_reasons(facts(Tier.STANDARD, last=None, follow_up=days_ago(3)), RULES, TODAY, True) == []


def test_never_called_is_due_since_tier_since():
    assert due_reasons(facts(Tier.SILVER, since=LONG_AGO), RULES, TODAY, False) == [DueReason(R.NEVER_CALLED, LONG_AGO)]


def test_just_upgraded_within_upgrade_call_days_and_not_reached_since():
    since = days_ago(29)  # the 30th day of the tier: still within 30 days
    assert due_reasons(facts(Tier.GOLD, since=since), RULES, TODAY, False) == [
        DueReason(R.JUST_UPGRADED, since), DueReason(R.NEVER_CALLED, since)
    ]
    # Upgraded today.
    assert due_reasons(facts(Tier.GOLD, since=TODAY), RULES, TODAY, False)[0] == DueReason(R.JUST_UPGRADED, TODAY)
    # 30 days after the upgrade the welcome call is no longer "just upgraded".
    assert due_reasons(facts(Tier.GOLD, since=days_ago(30)), RULES, TODAY, False) == [
        DueReason(R.NEVER_CALLED, days_ago(30))
    ]


def test_just_upgraded_ends_with_a_contact_on_or_after_the_upgrade_day():
    since = days_ago(10)
    # Reached the day before the upgrade (as a SILVER): the welcome call is still due.
    assert due_reasons(facts(Tier.GOLD, since=since, last=days_ago(11)), RULES, TODAY, False) == [
        DueReason(R.JUST_UPGRADED, since)
    ]
    # Reached on the upgrade day: nothing due.
    assert due_reasons(facts(Tier.GOLD, since=since, last=since), RULES, TODAY, False) == []


def test_a_recent_downgrade_is_not_a_welcome_call():
    since = days_ago(5)
    assert due_reasons(facts(Tier.SILVER, since=since, last=days_ago(20), downgraded=True), RULES, TODAY, False) == []
    assert due_reasons(facts(Tier.SILVER, since=since, downgraded=True), RULES, TODAY, False) == [
        DueReason(R.NEVER_CALLED, since)
    ]


def test_follow_up_due_from_its_date_on():
    # Reached yesterday, asked to be called again today: due; tomorrow: not yet.
    assert due_reasons(facts(last=days_ago(1), follow_up=TODAY), RULES, TODAY, False) == [DueReason(R.FOLLOW_UP_DUE, TODAY)]
    assert due_reasons(facts(last=days_ago(1), follow_up=TODAY + timedelta(days=1)), RULES, TODAY, False) == []
    # A follow-up missed for a week is due since its date.
    assert due_reasons(facts(last=days_ago(10), follow_up=days_ago(7)), RULES, TODAY, False) == [
        DueReason(R.FOLLOW_UP_DUE, days_ago(7))
    ]


def test_at_risk_unless_reached_within_upgrade_call_days():
    until = date(2026, 9, 30)  # validUntil: entered the 6-month horizon on 2026-03-30
    assert due_reasons(facts(Tier.GOLD, until=until, last=days_ago(30)), RULES, TODAY, True) == [
        DueReason(R.AT_RISK, days_ago(0))  # reached 30 days ago: due again from today (last + 30)
    ]
    assert due_reasons(facts(Tier.GOLD, until=until, last=days_ago(29)), RULES, TODAY, True) == []
    # Not reached for long: due since entering the horizon; the GOLD interval has passed too.
    assert due_reasons(facts(Tier.GOLD, until=until, last=date(2026, 1, 5)), RULES, TODAY, True) == [
        DueReason(R.AT_RISK, date(2026, 3, 30)), DueReason(R.INTERVAL_PASSED, date(2026, 3, 6))
    ]
    # Not at risk (the caller's at-risk selection said so): no AT_RISK whatever validUntil.
    assert due_reasons(facts(Tier.GOLD, until=until, last=days_ago(40)), RULES, TODAY, False) == []


def test_at_risk_is_never_due_before_tier_since():
    since = date(2026, 5, 1)
    assert due_reasons(facts(Tier.GOLD, since=since, until=date(2026, 8, 31), last=since), RULES, TODAY, True) == [
        DueReason(R.AT_RISK, date(2026, 5, 31))  # last contact + 30 days, after tier_since and the horizon
    ]
    assert due_reasons(facts(Tier.GOLD, since=since, until=date(2026, 8, 31)), RULES, TODAY, True)[0] == DueReason(
        R.AT_RISK, since
    )


def test_every_reason_at_once_in_urgency_order():
    since = days_ago(3)
    reasons = due_reasons(facts(Tier.PLATINUM, since=since, until=date(2026, 7, 31), follow_up=TODAY), RULES, TODAY, True)
    assert [r.reason for r in reasons] == [R.FOLLOW_UP_DUE, R.AT_RISK, R.JUST_UPGRADED, R.NEVER_CALLED]
    assert list(R) == [
        R.FOLLOW_UP_DUE, R.AT_RISK, R.JUST_UPGRADED, R.DECLINING, R.DORMANT, R.NEVER_CALLED, R.INTERVAL_PASSED
    ]
    churning = facts(Tier.PLATINUM, since=since, until=date(2026, 7, 31), follow_up=TODAY,
                     stage=LifecycleStage.DORMANT, stage_since=days_ago(1))
    assert [r.reason for r in due_reasons(churning, RULES, TODAY, True)] == [
        R.FOLLOW_UP_DUE, R.AT_RISK, R.JUST_UPGRADED, R.DORMANT, R.NEVER_CALLED
    ]


def test_an_upgrade_posted_late_from_an_old_flight_gets_its_welcome_call():
    # The flight of 2026-04-01 earned GOLD (tier_since), the posting came on 2026-06-10:
    # 70 days after the flight, 5 days before today. The welcome window (30 days) runs
    # from the day the upgrade was recorded.
    late = facts(Tier.GOLD, since=date(2026, 4, 1), last=date(2026, 5, 1), recorded=days_ago(5))
    assert due_reasons(late, RULES, TODAY, False) == [DueReason(R.JUST_UPGRADED, days_ago(5))]
    # Keyed to the flight date it would have been over (and the May contact predates the
    # upgrade it would welcome).
    assert due_reasons(facts(Tier.GOLD, since=date(2026, 4, 1), last=date(2026, 5, 1)), RULES, TODAY, False) == []
    # A contact on or after the recorded day ends it; the window closes 30 days after it.
    assert due_reasons(facts(Tier.GOLD, since=date(2026, 4, 1), last=days_ago(5), recorded=days_ago(5)),
                       RULES, TODAY, False) == []
    assert due_reasons(facts(Tier.GOLD, since=date(2026, 4, 1), last=date(2026, 5, 1), recorded=days_ago(30)),
                       RULES, TODAY, False) == []
    assert due_reasons(facts(Tier.GOLD, since=date(2026, 4, 1), last=date(2026, 5, 1), recorded=days_ago(29)),
                       RULES, TODAY, False) == [DueReason(R.JUST_UPGRADED, days_ago(29))]


@pytest.mark.parametrize(("stage", "reason"), [(LifecycleStage.DECLINING, R.DECLINING), (LifecycleStage.DORMANT, R.DORMANT)])
def test_declining_and_dormant_vips_are_due_until_reached_after_the_stage_began(stage, reason):
    began = days_ago(10)
    # Reached 20 days ago (within GOLD's 60-day interval), before the stage began: due.
    assert due_reasons(facts(Tier.GOLD, last=days_ago(20), stage=stage, stage_since=began), RULES, TODAY, False) == [
        DueReason(reason, began)
    ]
    # Reached on the day it began, or later: not due.
    assert due_reasons(facts(Tier.GOLD, last=began, stage=stage, stage_since=began), RULES, TODAY, False) == []
    # Never reached: due for the stage first, then NEVER_CALLED.
    assert [r.reason for r in due_reasons(facts(Tier.SILVER, stage=stage, stage_since=began), RULES, TODAY, False)] == [
        reason, R.NEVER_CALLED
    ]
    # STANDARD members and other stages: no churn call.
    assert due_reasons(facts(Tier.STANDARD, stage=stage, stage_since=began), RULES, TODAY, False) == []
    for other in (LifecycleStage.NEW, LifecycleStage.GROWING, LifecycleStage.STABLE):
        assert due_reasons(facts(Tier.GOLD, last=days_ago(20), stage=other, stage_since=began), RULES, TODAY, False) == []


def test_worklist_order_reason_then_tier_then_due_since_then_id():
    members = [
        facts(Tier.SILVER, last=days_ago(200), pk=1),  # INTERVAL_PASSED since 110 days ago
        facts(Tier.PLATINUM, last=days_ago(31), pk=2),  # INTERVAL_PASSED since yesterday
        facts(Tier.SILVER, last=days_ago(2), follow_up=days_ago(1), pk=3),  # FOLLOW_UP_DUE
        facts(Tier.SILVER, since=days_ago(100), pk=4),  # NEVER_CALLED since 100 days ago
        facts(Tier.GOLD, since=days_ago(400), pk=5),  # NEVER_CALLED since 400 days ago
        facts(Tier.SILVER, since=days_ago(400), pk=6),  # NEVER_CALLED since 400 days ago
        facts(Tier.SILVER, since=days_ago(400), pk=7),  # the same as 6: by id
        facts(Tier.PLATINUM, last=days_ago(100), pk=8),  # INTERVAL_PASSED since 70 days ago
    ]
    ordered = sorted(members, key=lambda f: _sort_key(f, due_reasons(f, RULES, TODAY, False)))
    assert [f.member_id for f in ordered] == [3, 5, 6, 7, 4, 8, 2, 1]
