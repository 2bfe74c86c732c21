"""Flight accrual and the tier bonus."""

from __future__ import annotations

import pytest

from loyalty.engine import FlightEarning, RuleViolation, flight_accrual, tier_bonus
from loyalty.rules import load_rules

RULES = load_rules()

# (fare class, percent) of the default domestic chart
CHART = [
    ("J", 300), ("C", 200), ("D", 150), ("Z", 125), ("R", 110), ("Y", 110), ("B", 100), ("M", 100),
    ("U", 100), ("H", 75), ("Q", 75), ("V", 75), ("W", 50), ("S", 50), ("T", 50), ("L", 25),
    ("P", 25), ("A", 25), ("K", 25), ("I", 0), ("X", 0), ("N", 0), ("O", 0),
]


@pytest.mark.parametrize(("fare_class", "percent"), CHART)
def test_fare_class_chart_on_1000_km(fare_class, percent):
    earning = flight_accrual(RULES, 1000, fare_class)
    assert earning == FlightEarning(
        qualifying_miles=1000 * percent // 100,
        segments_hundredths=percent,
        redeemable_miles=1000 * percent // 100,
    )


def test_j_counts_three_segments_and_h_three_quarters():
    assert flight_accrual(RULES, 1000, "J") == FlightEarning(3000, 300, 3000)
    assert flight_accrual(RULES, 1000, "H") == FlightEarning(750, 75, 750)


def test_zero_percent_classes_are_valid_and_earn_nothing():
    assert flight_accrual(RULES, 2000, "I") == FlightEarning(0, 0, 0)


def test_minimum_distance_is_500_km():
    assert flight_accrual(RULES, 300, "Y") == FlightEarning(550, 110, 550)  # counts as 500 km
    assert flight_accrual(RULES, 1, "B") == FlightEarning(500, 100, 500)
    assert flight_accrual(RULES, 499, "B").qualifying_miles == 500
    assert flight_accrual(RULES, 500, "B").qualifying_miles == 500
    assert flight_accrual(RULES, 501, "B").qualifying_miles == 501


def test_miles_round_down():
    assert flight_accrual(RULES, 1001, "H").qualifying_miles == 750  # 750.75
    assert flight_accrual(RULES, 1003, "L").qualifying_miles == 250  # 250.75
    assert flight_accrual(RULES, 1234, "Z").qualifying_miles == 1542  # 1542.5


@pytest.mark.parametrize("fare_class", ["y", "j", "E", "F", "G", "", "YY", " Y", "1", None])
def test_unknown_or_lower_case_fare_class_is_invalid(fare_class):
    with pytest.raises(RuleViolation) as info:
        flight_accrual(RULES, 1000, fare_class)
    assert info.value.code == "INVALID"
    assert info.value.field == ("flight", "fareClass")
    assert info.value.message


@pytest.mark.parametrize("distance", [0, -1, -500])
def test_non_positive_distance_is_invalid(distance):
    with pytest.raises(RuleViolation) as info:
        flight_accrual(RULES, distance, "Y")
    assert (info.value.code, info.value.field) == ("INVALID", ("flight", "distanceKm"))


@pytest.mark.parametrize(
    ("tier", "miles", "bonus"),
    [("STANDARD", 3000, 0), ("SILVER", 3000, 750), ("GOLD", 3000, 900), ("PLATINUM", 3000, 1500),
     ("GOLD", 1001, 300), ("SILVER", 1001, 250), ("PLATINUM", 1001, 500), ("GOLD", 0, 0)],
)
def test_tier_bonus_rounds_down(tier, miles, bonus):
    assert tier_bonus(RULES, tier, miles) == bonus


def test_tier_bonus_of_an_unknown_tier_is_an_error():
    with pytest.raises(ValueError):
        tier_bonus(RULES, "DIAMOND", 1000)
