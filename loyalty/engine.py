"""Pure decisions of the programme: accrual, tiers, FIFO redemption, claims.

Nothing here touches a database or a clock: callers pass the totals and
dates, and get back values or a ``RuleViolation`` whose ``code`` is one of the
contract's error codes. Segments are integer hundredths (see ``rules``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Hashable, Literal, Sequence, TypeVar

from members.errors import DomainError

from . import calendar as cal
from .rules import TIERS, Rules

__all__ = [
    "FlightEarning",
    "RuleViolation",
    "TierDecision",
    "TierReason",
    "check_claim_date",
    "consume_fifo",
    "flight_accrual",
    "is_at_risk",
    "next_tier_gap",
    "qualified_tier",
    "review_decision",
    "tier_after_reversal",
    "tier_bonus",
    "upgrade_decision",
]

TierReason = Literal["UPGRADE", "RETENTION", "DOWNGRADE", "MANUAL", "REVERSAL"]
LotId = TypeVar("LotId", bound=Hashable)
STANDARD = TIERS[0]


class RuleViolation(DomainError):
    """A request the rules refuse: a DomainError (maps onto a GraphQL UserError),
    constructed field-first as the rules code reads best."""

    def __init__(self, code: str, field: Sequence[str] = (), message: str = "") -> None:
        super().__init__(code, message or code, field)
        self.field: tuple[str, ...] = tuple(field)

    def __repr__(self) -> str:
        return f"RuleViolation({self.code!r}, {self.field!r}, {self.message!r})"


@dataclass(frozen=True)
class FlightEarning:
    """What one flight earns before any tier bonus."""

    qualifying_miles: int
    segments_hundredths: int
    redeemable_miles: int


@dataclass(frozen=True)
class TierDecision:
    """A tier to move to. ``since`` is the date the decision takes effect;
    ``valid_until`` is None for STANDARD."""

    tier: str
    reason: TierReason
    since: date
    valid_until: date | None


# --- accrual ---------------------------------------------------------------


def flight_accrual(rules: Rules, distance_km: int, fare_class: str) -> FlightEarning:
    """Qualifying miles, segments and redeemable miles of one flight.

    miles = floor(max(distance, minimum) * percent / 100); segments = percent
    hundredths (J 300 % = 3 segments); redeemable = qualifying miles. A class
    earning 0 % is valid and earns nothing. Fare classes are case-sensitive:
    "y" is INVALID, as is any letter missing from the chart.
    """
    if isinstance(distance_km, bool) or not isinstance(distance_km, int) or distance_km <= 0:
        raise RuleViolation("INVALID", ("flight", "distanceKm"), "distanceKm must be a positive whole number of kilometres")
    if not isinstance(fare_class, str) or fare_class not in rules.fare_classes:
        raise RuleViolation("INVALID", ("flight", "fareClass"), f"unknown fare class {fare_class!r}")
    percent = rules.fare_classes[fare_class]
    miles = max(distance_km, rules.minimum_distance_km) * percent // 100
    return FlightEarning(qualifying_miles=miles, segments_hundredths=percent, redeemable_miles=miles)


def tier_bonus(rules: Rules, tier: str, redeemable_miles: int) -> int:
    """Redeemable bonus for a flight at ``tier`` (the tier held before the posting), rounded down."""
    if redeemable_miles < 0:
        raise ValueError("a bonus is computed on a flight's non-negative miles")
    return redeemable_miles * rules.tier(tier).bonus_percent // 100


# --- tiers -----------------------------------------------------------------


def _meets(rules: Rules, tier: str, miles: int, segments: int, retain: bool) -> bool:
    """Whether ``tier``'s upgrade (or retain) threshold is met by miles OR segments."""
    rule = rules.tier(tier)
    if retain:
        return miles >= rule.retain_miles or segments >= rule.retain_segments
    return miles >= rule.upgrade_miles or segments >= rule.upgrade_segments


def qualified_tier(rules: Rules, miles: int, segments: int, *, retain: bool = False) -> str:
    """Highest tier whose upgrade (``retain``: retain) threshold is met by miles or segments."""
    for name in reversed(TIERS[1:]):
        if _meets(rules, name, miles, segments, retain):
            return name
    return STANDARD


def upgrade_decision(
    rules: Rules,
    current_tier: str,
    current_valid_until: date | None,
    window_miles: int,
    window_segments: int,
    activity_date: date,
) -> TierDecision | None:
    """The upgrade a posting causes, or None.

    ``window_*`` are the qualifying totals of the window ending with the
    activity's month, including the new posting. Only a move up is returned
    (tiers may be skipped); since = the activity date, valid_until = last day
    of the validity_months-th month counting the upgrade month. Meeting the
    current tier again returns None: it never extends validity, which is why
    ``current_valid_until`` takes no part in the decision (it is accepted so
    callers hand over the member's whole tier state).
    """
    del current_valid_until  # see docstring: deliberately unused
    target = qualified_tier(rules, window_miles, window_segments)
    if rules.rank(target) <= rules.rank(current_tier):
        return None
    until = cal.upgrade_valid_until(activity_date, rules.tier(target).validity_months)
    return TierDecision(target, "UPGRADE", activity_date, until)


def review_decision(
    rules: Rules,
    tier: str,
    valid_until: date,
    window_miles: int,
    window_segments: int,
) -> TierDecision:
    """The retention decision due at ``valid_until`` for an elite ``tier``.

    ``window_*`` are the totals of the retention window (the window_months
    ending with valid_until's month). Retained: RETENTION, same tier. Else
    DOWNGRADE to the highest lower tier whose retain threshold is met, or to
    STANDARD (valid_until None). A renewed or lower elite tier runs to the
    end of the month renewal_months after valid_until's month. ``since`` is
    the day after the old valid_until, when the decision takes effect; for
    RETENTION the member still holds the tier since its original date, so a
    caller showing "held since" may keep its stored date.
    """
    if tier == STANDARD or valid_until is None:
        raise ValueError("only an elite tier with a validUntil is reviewed")
    effective = valid_until + timedelta(days=1)
    renewed = cal.renewed_valid_until(valid_until, rules.renewal_months)
    if _meets(rules, tier, window_miles, window_segments, retain=True):
        return TierDecision(tier, "RETENTION", effective, renewed)
    # Highest tier below the current one whose retain threshold is met.
    for name in reversed(TIERS[1 : rules.rank(tier)]):
        if _meets(rules, name, window_miles, window_segments, retain=True):
            return TierDecision(name, "DOWNGRADE", effective, renewed)
    return TierDecision(STANDARD, "DOWNGRADE", effective, None)


def is_at_risk(
    rules: Rules,
    tier: str,
    valid_until: date | None,
    today: date,
    window_miles: int,
    window_segments: int,
) -> bool:
    """atRiskOfDowngrade: an elite tier ending within at_risk_months of today
    (or already due for review) whose retention-window totals so far are
    below the retain threshold in both miles and segments. STANDARD: never.
    """
    if tier == STANDARD or valid_until is None:
        return False
    if valid_until > cal.add_months(today, rules.at_risk_months):
        return False
    return not _meets(rules, tier, window_miles, window_segments, retain=True)


def tier_after_reversal(
    rules: Rules,
    *,
    current_tier: str,
    upgraded_on: date,
    prior_tier: str,
    prior_since: date,
    prior_valid_until: date | None,
    window_miles: int,
    window_segments: int,
) -> TierDecision | None:
    """The tier the rules give once an entry that fed an upgrade is reversed.

    Semantic (RULES.md "Reversal"): call it when the member's current tier
    (``current_tier``) came from an UPGRADE on ``upgraded_on`` and the reversed
    entry lies in that upgrade's window. ``prior_*`` is the tier state held
    just before that upgrade; ``window_*`` are the totals of the upgrade's
    window (window_months ending with ``upgraded_on``'s month) without the
    reversed entry and without any other reversed entry.

    - Totals still meeting ``current_tier``'s upgrade threshold: None (the
      upgrade holds; nothing changes).
    - Otherwise the member never drops below ``prior_tier`` (it was held on its
      own terms). If the totals meet a tier above ``prior_tier`` (and below
      ``current_tier``), the upgrade is replayed to that tier: since =
      ``upgraded_on``, valid_until as for an upgrade on that day.
    - Else the prior state is restored: ``prior_tier`` with ``prior_since``
      and ``prior_valid_until``; a restored validity already past is left for
      the review job to decide (a tier never drops before validUntil).

    The reason is always REVERSAL.
    """
    current_rank = rules.rank(current_tier)
    if rules.rank(prior_tier) >= current_rank:
        return None  # the current tier was not an upgrade over the prior one
    target = qualified_tier(rules, window_miles, window_segments)
    if rules.rank(target) >= current_rank:
        return None
    if rules.rank(target) > rules.rank(prior_tier):
        until = cal.upgrade_valid_until(upgraded_on, rules.tier(target).validity_months)
        return TierDecision(target, "REVERSAL", upgraded_on, until)
    until = None if prior_tier == STANDARD else prior_valid_until
    return TierDecision(prior_tier, "REVERSAL", prior_since, until)


def next_tier_gap(
    rules: Rules, tier: str, window_miles: int, window_segments: int
) -> tuple[str | None, int | None, int | None]:
    """(next tier, miles missing, segments missing in hundredths); all None at the top tier.

    Each gap is what is missing on that route alone (never below 0); meeting
    either one upgrades the member.
    """
    rank = rules.rank(tier)
    if rank == len(TIERS) - 1:
        return None, None, None
    nxt = rules.tiers[rank + 1]
    return (
        nxt.tier,
        max(0, nxt.upgrade_miles - window_miles),
        max(0, nxt.upgrade_segments - window_segments),
    )


# --- redemption and claims -------------------------------------------------


def consume_fifo(
    lots: Sequence[tuple[LotId, date, int]], amount: int, field: Sequence[str] = ("miles",)
) -> list[tuple[LotId, int]]:
    """Take ``amount`` miles from credit lots ``(lot_id, expires_on, remaining)``.

    Earliest-expiring first, ties by lot id, so redemptions use what would be
    lost first. Returns ``(lot_id, taken)`` for each lot touched, in order.
    Lots with nothing left are skipped. INSUFFICIENT_MILES (on ``field``) if
    the lots hold less than ``amount``.
    """
    if amount < 0:
        raise ValueError("amount must not be negative")
    available = sum(max(0, remaining) for _, _, remaining in lots)
    if available < amount:
        raise RuleViolation(
            "INSUFFICIENT_MILES", field, f"{amount} miles requested, {available} redeemable"
        )
    taken: list[tuple[LotId, int]] = []
    for lot_id, _expires, remaining in sorted(lots, key=lambda lot: (lot[1], lot[0])):
        if amount == 0:
            break
        if remaining <= 0:
            continue
        take = min(remaining, amount)
        taken.append((lot_id, take))
        amount -= take
    return taken


def check_claim_date(
    rules: Rules, activity: date, today: date, field: Sequence[str] = ("flight", "date")
) -> None:
    """INVALID if ``activity`` is after ``today`` or before the earliest claim date
    (same day claims_window_months back, clamped to month end). Both ends are accepted.
    """
    if activity > today:
        raise RuleViolation("INVALID", field, f"activity date {activity} is in the future")
    earliest = cal.earliest_claim_date(today, rules.claims_window_months)
    if activity < earliest:
        raise RuleViolation(
            "INVALID", field, f"activity date {activity} is before the earliest claim date {earliest}"
        )
