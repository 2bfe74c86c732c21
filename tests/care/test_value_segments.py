"""Value segments: the pure ranking of one office's trailing qualifying miles."""

from __future__ import annotations

from care.segments import value_segments
from loyalty.rules import load_rules
from members.enums import ValueSegment

CARE = load_rules().care
HIGH, MEDIUM, LOW = ValueSegment.HIGH, ValueSegment.MEDIUM, ValueSegment.LOW


def segments(miles: dict[int, int], high: int = CARE.value_high_percent, medium: int = CARE.value_medium_percent) -> dict:
    return value_segments(miles, high_percent=high, medium_percent=medium)


def test_the_shipped_percentages():
    assert (CARE.value_high_percent, CARE.value_medium_percent, CARE.value_window_months) == (20, 50, 12)


def test_ten_members_top_two_high_next_three_medium_rest_low():
    # member i has i * 10 miles: 10 .. 100
    result = segments({i: i * 10 for i in range(1, 11)})
    assert [result[i] for i in range(10, 0, -1)] == [HIGH, HIGH, MEDIUM, MEDIUM, MEDIUM, LOW, LOW, LOW, LOW, LOW]


def test_order_of_the_input_does_not_matter():
    miles = {i: i * 10 for i in range(1, 11)}
    assert segments(dict(reversed(list(miles.items())))) == segments(miles)


def test_ties_are_ranked_by_member_id():
    # 10 members all with 500 miles: ranks follow ids
    result = segments({100 + i: 500 for i in range(10)})
    assert [result[100 + i] for i in range(10)] == [HIGH, HIGH, MEDIUM, MEDIUM, MEDIUM, LOW, LOW, LOW, LOW, LOW]
    # a tie across the HIGH boundary: ids 7 and 3 both have 900, the lower id ranks first
    result = segments({1: 1000, 7: 900, 3: 900, 4: 10, 5: 10, 6: 10, 2: 10, 8: 10, 9: 10, 10: 10})
    assert (result[1], result[3], result[7]) == (HIGH, HIGH, MEDIUM)


def test_members_without_miles_are_low_wherever_they_rank():
    # 10 members, only one with miles: it is HIGH; the zeros would rank 2..10 but are LOW
    result = segments({1: 0, 2: 0, 3: 5000, 4: 0, 5: 0, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0})
    assert result[3] is HIGH
    assert [result[i] for i in (1, 2, 4, 5, 6, 7, 8, 9, 10)] == [LOW] * 9
    # a reversal can leave a window negative: still LOW
    assert segments({1: -300, 2: 0}) == {1: LOW, 2: LOW}


def test_small_offices():
    assert segments({}) == {}
    # one member: rank 1, 100 <= 1 * 20 is false, 100 <= 1 * 50 false: LOW even with miles
    assert segments({1: 900}) == {1: LOW}
    # five members: HIGH is rank 1 (100 <= 100), MEDIUM rank 2 (200 <= 250)
    result = segments({1: 50, 2: 40, 3: 30, 4: 20, 5: 10})
    assert [result[i] for i in range(1, 6)] == [HIGH, MEDIUM, LOW, LOW, LOW]


def test_other_percentages():
    result = segments({i: i for i in range(1, 5)}, high=50, medium=100)
    assert [result[i] for i in (4, 3, 2, 1)] == [HIGH, HIGH, MEDIUM, MEDIUM]
