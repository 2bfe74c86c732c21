"""Redemption takes the credits that expire first."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.engine import RuleViolation, consume_fifo

D = date.fromisoformat


def test_earliest_expiring_first_across_lots():
    lots = [(3, D("2029-03-31"), 1000), (1, D("2028-12-31"), 300), (2, D("2029-01-31"), 500)]
    assert consume_fifo(lots, 1000) == [(1, 300), (2, 500), (3, 200)]


def test_ties_by_lot_id():
    lots = [(9, D("2029-03-31"), 100), (4, D("2029-03-31"), 100), (7, D("2029-03-31"), 100)]
    assert consume_fifo(lots, 150) == [(4, 100), (7, 50)]


def test_exact_balance_and_single_lot():
    lots = [(1, D("2029-03-31"), 500), (2, D("2029-04-30"), 500)]
    assert consume_fifo(lots, 1000) == [(1, 500), (2, 500)]
    assert consume_fifo(lots, 200) == [(1, 200)]


def test_empty_lots_are_skipped():
    lots = [(1, D("2028-01-31"), 0), (2, D("2029-03-31"), 400)]
    assert consume_fifo(lots, 100) == [(2, 100)]


def test_nothing_requested_takes_nothing():
    assert consume_fifo([(1, D("2029-03-31"), 10)], 0) == []


def test_more_than_the_lots_hold_is_insufficient():
    lots = [(1, D("2029-03-31"), 600), (2, D("2029-04-30"), 399)]
    with pytest.raises(RuleViolation) as info:
        consume_fifo(lots, 1000)
    assert info.value.code == "INSUFFICIENT_MILES"
    assert info.value.field == ("miles",)
    with pytest.raises(RuleViolation):
        consume_fifo([], 1)


def test_negative_amount_is_a_programming_error():
    with pytest.raises(ValueError):
        consume_fifo([], -1)
