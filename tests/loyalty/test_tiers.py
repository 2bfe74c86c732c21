"""Tier rules: upgrade, retention, downgrade, at-risk, reversal, next-tier gap.

Segments are integer hundredths: 25 segments = 2500.
"""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.engine import (
    TierDecision,
    is_at_risk,
    next_tier_gap,
    qualified_tier,
    review_decision,
    tier_after_reversal,
    upgrade_decision,
)
from loyalty.rules import load_rules

RULES = load_rules()
D = date.fromisoformat


@pytest.mark.parametrize(
    ("miles", "segments", "tier"),
    [(0, 0, "STANDARD"), (39_999, 2475, "STANDARD"), (40_000, 0, "SILVER"), (0, 2500, "SILVER"),
     (79_999, 3975, "SILVER"), (80_000, 0, "GOLD"), (0, 4000, "GOLD"), (159_999, 8975, "GOLD"),
     (160_000, 0, "PLATINUM"), (0, 9000, "PLATINUM"), (1_000_000, 100_000, "PLATINUM")],
)
def test_upgrade_thresholds_miles_or_segments(miles, segments, tier):
    assert qualified_tier(RULES, miles, segments) == tier


@pytest.mark.parametrize(
    ("miles", "segments", "tier"),
    [(34_999, 2275, "STANDARD"), (35_000, 0, "SILVER"), (0, 2300, "SILVER"), (70_000, 0, "GOLD"),
     (0, 3600, "GOLD"), (145_000, 0, "PLATINUM"), (0, 8000, "PLATINUM"), (144_999, 7975, "GOLD")],
)
def test_retain_thresholds_miles_or_segments(miles, segments, tier):
    assert qualified_tier(RULES, miles, segments, retain=True) == tier


def test_upgrade_takes_effect_on_the_activity_date_for_24_months():
    decision = upgrade_decision(RULES, "STANDARD", None, 40_000, 0, D("2026-03-15"))
    assert decision == TierDecision("SILVER", "UPGRADE", D("2026-03-15"), D("2028-02-29"))


def test_upgrade_may_skip_tiers():
    decision = upgrade_decision(RULES, "STANDARD", None, 80_000, 0, D("2026-03-15"))
    assert decision == TierDecision("GOLD", "UPGRADE", D("2026-03-15"), D("2028-02-29"))
    decision = upgrade_decision(RULES, "STANDARD", None, 160_000, 0, D("2026-11-22"))
    assert decision == TierDecision("PLATINUM", "UPGRADE", D("2026-11-22"), D("2028-10-31"))


def test_upgrade_by_segments_alone():
    decision = upgrade_decision(RULES, "STANDARD", None, 12_000, 4000, D("2026-03-15"))
    assert decision == TierDecision("GOLD", "UPGRADE", D("2026-03-15"), D("2028-02-29"))


def test_upgrade_from_an_elite_tier_gets_a_new_validity():
    decision = upgrade_decision(RULES, "SILVER", D("2027-01-31"), 80_000, 0, D("2026-06-10"))
    assert decision == TierDecision("GOLD", "UPGRADE", D("2026-06-10"), D("2028-05-31"))


def test_just_below_the_threshold_is_no_upgrade():
    assert upgrade_decision(RULES, "STANDARD", None, 39_999, 2475, D("2026-03-15")) is None


def test_meeting_the_current_tier_again_does_not_extend_validity():
    assert upgrade_decision(RULES, "SILVER", D("2027-01-31"), 60_000, 3000, D("2026-12-01")) is None
    # nor does meeting a lower tier's threshold move anyone down
    assert upgrade_decision(RULES, "GOLD", D("2027-01-31"), 40_000, 0, D("2026-12-01")) is None


def test_retention_renews_for_12_months_after_the_old_month():
    decision = review_decision(RULES, "SILVER", D("2028-02-29"), 35_000, 0)
    assert decision == TierDecision("SILVER", "RETENTION", D("2028-03-01"), D("2029-02-28"))


def test_retention_by_segments_alone():
    decision = review_decision(RULES, "GOLD", D("2028-02-29"), 0, 3600)
    assert decision == TierDecision("GOLD", "RETENTION", D("2028-03-01"), D("2029-02-28"))


def test_downgrade_to_the_highest_tier_retained():
    decision = review_decision(RULES, "PLATINUM", D("2028-02-29"), 75_000, 0)
    assert decision == TierDecision("GOLD", "DOWNGRADE", D("2028-03-01"), D("2029-02-28"))
    decision = review_decision(RULES, "PLATINUM", D("2028-02-29"), 144_999, 7975)
    assert decision.tier == "GOLD"
    decision = review_decision(RULES, "PLATINUM", D("2028-02-29"), 0, 2300)
    assert decision == TierDecision("SILVER", "DOWNGRADE", D("2028-03-01"), D("2029-02-28"))


def test_downgrade_to_standard_has_no_validity():
    decision = review_decision(RULES, "PLATINUM", D("2028-02-29"), 34_999, 2275)
    assert decision == TierDecision("STANDARD", "DOWNGRADE", D("2028-03-01"), None)
    decision = review_decision(RULES, "SILVER", D("2027-10-31"), 0, 0)
    assert decision == TierDecision("STANDARD", "DOWNGRADE", D("2027-11-01"), None)


def test_standard_is_never_reviewed():
    with pytest.raises(ValueError):
        review_decision(RULES, "STANDARD", D("2028-02-29"), 0, 0)


@pytest.mark.parametrize(
    ("today", "valid_until", "miles", "segments", "at_risk"),
    [
        ("2026-12-01", "2027-05-31", 0, 0, True),  # 2027-05-31 is within 6 months of 2026-12-01
        ("2026-11-30", "2027-05-31", 0, 0, False),  # 6 months from 2026-11-30 is 2027-05-30
        ("2026-11-22", "2027-02-28", 69_999, 3575, True),  # below both retain thresholds
        ("2026-11-22", "2027-02-28", 70_000, 0, False),  # miles retained
        ("2026-11-22", "2027-02-28", 0, 3600, False),  # segments retained
        ("2026-11-22", "2026-10-31", 0, 0, True),  # past validUntil, review not yet run
        ("2026-11-22", "2028-10-31", 0, 0, False),  # far from validUntil
    ],
)
def test_at_risk_of_downgrade_for_gold(today, valid_until, miles, segments, at_risk):
    assert is_at_risk(RULES, "GOLD", D(valid_until), D(today), miles, segments) is at_risk


def test_standard_is_never_at_risk():
    assert is_at_risk(RULES, "STANDARD", None, D("2026-11-22"), 0, 0) is False


def reversal(**kw) -> TierDecision | None:
    args = dict(
        current_tier="GOLD",
        upgraded_on=D("2026-03-15"),
        prior_tier="STANDARD",
        prior_since=D("2025-01-10"),
        prior_valid_until=None,
        window_miles=0,
        window_segments=0,
    )
    args.update(kw)
    return tier_after_reversal(RULES, **args)


def test_reversal_that_undoes_the_upgrade_restores_the_prior_tier():
    decision = reversal(current_tier="PLATINUM", window_miles=10_000)
    assert decision == TierDecision("STANDARD", "REVERSAL", D("2025-01-10"), None)
    decision = reversal(prior_tier="SILVER", prior_since=D("2025-02-01"), prior_valid_until=D("2027-01-31"),
                        window_miles=45_000)
    assert decision == TierDecision("SILVER", "REVERSAL", D("2025-02-01"), D("2027-01-31"))


def test_reversal_keeps_what_the_remaining_totals_still_earn():
    decision = reversal(window_miles=45_000)  # GOLD without the entry is only SILVER
    assert decision == TierDecision("SILVER", "REVERSAL", D("2026-03-15"), D("2028-02-29"))


def test_reversal_never_goes_below_the_prior_tier():
    decision = reversal(prior_tier="SILVER", prior_since=D("2025-02-01"), prior_valid_until=D("2027-01-31"))
    assert decision.tier == "SILVER"


def test_upgrade_that_still_holds_is_not_changed():
    assert reversal(window_miles=80_000) is None
    assert reversal(window_segments=4000) is None
    assert reversal(window_miles=200_000) is None  # never an upgrade through a reversal


def test_next_tier_gap():
    assert next_tier_gap(RULES, "STANDARD", 30_000, 1000) == ("SILVER", 10_000, 1500)
    assert next_tier_gap(RULES, "SILVER", 0, 0) == ("GOLD", 80_000, 4000)
    assert next_tier_gap(RULES, "GOLD", 100_000, 9500) == ("PLATINUM", 60_000, 0)
    assert next_tier_gap(RULES, "PLATINUM", 0, 0) == (None, None, None)
