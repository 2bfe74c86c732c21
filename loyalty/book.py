"""What a posting, a tier review and an expiry write: decided here, once.

The posting services (loyalty.ledger), the tier review (loyalty.tiers), the expiry job
(loyalty.jobs), the rule change (loyalty.rulechange), the goodwill credit
(care.goodwill) and the demo (api.demo) all take from this module the ledger entries
they write (kind, miles, source, externalRef, description, fingerprint), the tier
changes (reason, since, validUntil, note, effective time) and what an expiry takes from
the lots. Every entry's columns come from loyalty.ledger.entry_row (entry_values: posted
now). The services keep their own SQL around these decisions (the member's row lock
first, RETURNING, group commit, savepoints: loyalty.ledger's docstring); the demo
replays years of a member's history on a `MemberBook`, the same decisions applied to
the member's state held in memory, and writes the rows in bulk
(loyalty.ledger.write_books).
tests/loyalty/test_book.py posts demo members' activities through the services and
compares every row with the book's, so the two cannot drift apart;
tests/loyalty/test_book_entries.py does the same for reversals, rule change adjustments
and goodwill credits.

Pure: no database, no clock (the caller gives every day and time).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any, NamedTuple, Protocol

from loyalty import calendar as cal
from loyalty import engine
from loyalty.models import LedgerEntryKind, TierChangeReason
from loyalty.rules import Rules
from members.idempotency import fingerprint

__all__ = [
    "AIRLINE_SOURCE", "GOODWILL_SOURCE", "MAX_ENTRY_DESCRIPTION", "MAX_TIER_NOTE", "REVIEW_ACTOR",
    "RULE_CHANGE_REF_PREFIX", "RULES_HASH_IN_REF", "RULES_HASH_IN_TEXT", "SYSTEM_SOURCE", "Entry", "FlightDetails",
    "MemberBook", "Posted", "TierChange", "bonus_entry", "entry_description", "expiry_entry", "family_name_key",
    "flight_content", "flight_entry", "flight_fingerprint", "goodwill_entry", "is_rule_adjustment", "lot_remaining",
    "partner_entry", "partner_fingerprint", "redemption_entry", "reversal_entry", "reversal_note", "review",
    "rule_adjustment_entry", "rule_adjustment_ref", "rule_change_note", "upgrade",
]

AIRLINE_SOURCE = "AIRLINE"
SYSTEM_SOURCE = "SYSTEM"  # source of entries the programme posts by itself (expiry, rule change adjustments)
GOODWILL_SOURCE = "GOODWILL"  # source of the goodwill credits staff give (care.goodwill)
REVIEW_ACTOR = "system:review"  # who the tier review's changes are recorded as

MAX_ENTRY_DESCRIPTION = 300  # characters of an entry's description (the ledger_entry column)
MAX_TIER_NOTE = 300  # characters of a tier change's note (the tier_event column)

# A rule change's ADJUSTMENT entries: source SYSTEM, externalRef
# RULE_CHANGE-<16 hex of the rules file's SHA-256>-<member id>-<day>[-2, -3, ...]; their
# descriptions and tier change notes name the file by 12 hex of the same hash.
RULE_CHANGE_REF_PREFIX = "RULE_CHANGE-"
RULES_HASH_IN_REF = 16  # hex digits of the rules file's SHA-256 in an adjustment's externalRef
RULES_HASH_IN_TEXT = 12  # hex digits of it in an adjustment's description and its tier change's note


@dataclass(frozen=True)
class FlightDetails:
    carrier: str
    flight_number: str
    date: date
    origin: str
    destination: str
    distance_km: int
    fare_class: str


class Entry(NamedTuple):
    """A ledger entry to write (posted_at and the ids are the writer's). A named tuple:
    the demo makes hundreds of thousands, and a frozen dataclass takes twice as long
    to build."""

    kind: LedgerEntryKind
    activity_date: date
    redeemable_miles: int
    source: str
    qualifying_miles: int = 0
    qualifying_segments: int = 0  # hundredths
    external_ref: str | None = None
    description: str | None = None
    flight: FlightDetails | None = None
    fingerprint: str | None = None
    bonus_for: int | None = None  # in a MemberBook: the index of the flight a bonus is for


class Posted(Protocol):
    """An entry already in the ledger as its reversal reads it (a loyalty.models.LedgerEntry)."""

    id: int
    kind: LedgerEntryKind
    activity_date: date
    qualifying_miles: int
    qualifying_segments: int
    redeemable_miles: int


@dataclass(frozen=True, slots=True)
class TierChange:
    """A tier change to record (loyalty.events.record_tier_change)."""

    to_tier: str
    reason: TierChangeReason
    since: date
    valid_until: date | None
    note: str | None = None
    effective_at: datetime | None = None  # None: when it is written


# ---- what the entries say --------------------------------------------------------------


def flight_content(flight: FlightDetails) -> dict[str, Any]:
    return {
        "carrier": flight.carrier, "flightNumber": flight.flight_number, "date": flight.date.isoformat(),
        "origin": flight.origin, "destination": flight.destination, "distanceKm": flight.distance_km,
        "fareClass": flight.fare_class,
    }


def family_name_key(value: str | None) -> str:
    """Family names compare case-, width- (NFKC: ＷＡＮＧ is WANG) and space-insensitively."""
    return "".join(unicodedata.normalize("NFKC", value or "").casefold().split())


def flight_fingerprint(card: str, flight: FlightDetails) -> str:
    """flightAccrue's request fingerprint (an externalRef's replay must match it)."""
    return fingerprint("flightAccrue", {"cardNumber": card, "flight": flight_content(flight)})


def partner_fingerprint(card: str, name_key: str, miles: int, activity_date: date, text: str | None) -> str:
    """partnerAccrue's request fingerprint."""
    return fingerprint("partnerAccrue", {
        "cardNumber": card, "familyName": name_key, "miles": miles, "activityDate": activity_date.isoformat(),
        "description": text,
    })


def flight_entry(flight: FlightDetails, earning: engine.FlightEarning, ref: str, print_: str) -> Entry:
    return Entry(
        LedgerEntryKind.FLIGHT, flight.date, earning.redeemable_miles, AIRLINE_SOURCE,
        qualifying_miles=earning.qualifying_miles, qualifying_segments=earning.segments_hundredths,
        external_ref=ref, fingerprint=print_, flight=flight,
        description=f"{flight.carrier}{flight.flight_number} {flight.origin}-{flight.destination} {flight.fare_class}",
    )


def bonus_entry(rules: Rules, tier_before: str, flight: FlightDetails, redeemable: int, bonus_for: int | None = None) -> Entry | None:
    """The TIER_BONUS of a flight, earned at the tier held BEFORE its posting; None for no bonus."""
    bonus = engine.tier_bonus(rules, tier_before, redeemable)
    if bonus <= 0:
        return None
    return Entry(
        LedgerEntryKind.TIER_BONUS, flight.date, bonus, AIRLINE_SOURCE, bonus_for=bonus_for,
        description=f"{rules.tier(tier_before).bonus_percent} % {tier_before} bonus on {flight.carrier}{flight.flight_number}",
    )


def partner_entry(source: str, miles: int, activity_date: date, text: str | None, ref: str, print_: str) -> Entry:
    return Entry(LedgerEntryKind.PARTNER, activity_date, miles, source, external_ref=ref, description=text, fingerprint=print_)


def redemption_entry(source: str, miles: int, day: date, text: str) -> Entry:
    return Entry(LedgerEntryKind.REDEMPTION, day, -miles, source, description=text)


def expiry_entry(expired: Sequence[tuple[date, int]]) -> Entry | None:
    """The EXPIRY entry of a member's expired lots (expires_on, remaining > 0): one entry,
    dated the latest of their last days (a late run dates it as a timely one would)."""
    amount = sum(remaining for _, remaining in expired)
    if amount <= 0:
        return None
    latest = max(expires_on for expires_on, _ in expired)
    return Entry(
        LedgerEntryKind.EXPIRY, latest, -amount, SYSTEM_SOURCE,
        description=f"Expiry of {amount} miles of {len(expired)} credit(s) good through {latest} or earlier",
    )


def entry_description(text: str) -> str:
    """A description as stored: its first MAX_ENTRY_DESCRIPTION characters."""
    return text[:MAX_ENTRY_DESCRIPTION]


def reversal_entry(original: Posted, source: str, reason: str) -> Entry:
    """The REVERSAL of an entry (of a flight's bonus too, reversed with it): its miles and
    segments negated, on its activity date. Its writer gives reverses_id = original.id."""
    label = "bonus " if original.kind is LedgerEntryKind.TIER_BONUS else ""
    return Entry(
        LedgerEntryKind.REVERSAL, original.activity_date, -original.redeemable_miles, source,
        qualifying_miles=-original.qualifying_miles, qualifying_segments=-original.qualifying_segments,
        description=entry_description(f"Reversal of {label}entry {original.id} ({original.kind.value}): {reason}"),
    )


def reversal_note(entry_id: int, reason: str) -> str:
    """The note of the tier change a reversal of entry `entry_id` causes."""
    return f"reversal of entry {entry_id}: {reason}"[:MAX_TIER_NOTE]


def rule_adjustment_ref(rules_hash: str, member_id: int, day: date, taken: Collection[str] = ()) -> str:
    """The externalRef of the adjustment of a member's `day` by the rules file of SHA-256
    `rules_hash`: the first of RULE_CHANGE-<hash>-<member id>-<day>, then -2, -3, ...
    (a later difference of the same day, after a reversal) that is not `taken`."""
    ref = base = f"{RULE_CHANGE_REF_PREFIX}{rules_hash[:RULES_HASH_IN_REF]}-{member_id}-{day.isoformat()}"
    number = 1
    while ref in taken:
        number += 1
        ref = f"{base}-{number}"
    return ref


def is_rule_adjustment(kind: LedgerEntryKind, source: str, ref: str | None) -> bool:
    """Whether an entry of this kind, source and externalRef is a rule change's
    adjustment (a goodwill ADJUSTMENT is not, nor a partner's credit of such a ref)."""
    return (kind is LedgerEntryKind.ADJUSTMENT and source == SYSTEM_SOURCE
            and (ref or "").startswith(RULE_CHANGE_REF_PREFIX))


def rule_adjustment_entry(rules_hash: str, ref: str, day: date, qualifying_miles: int, qualifying_segments: int,
                          redeemable_miles: int) -> Entry:
    """The ADJUSTMENT a rule change posts for one activity day: what the new rules earn
    for the day's flights minus what the ledger holds for them (signed)."""
    return Entry(
        LedgerEntryKind.ADJUSTMENT, day, redeemable_miles, SYSTEM_SOURCE, qualifying_miles=qualifying_miles,
        qualifying_segments=qualifying_segments, external_ref=ref,
        description=f"rules change {rules_hash[:RULES_HASH_IN_TEXT]}: the flights of {day} earned again",
    )


def rule_change_note(rules_hash: str, miles: int, segments: int, start: date, end: date) -> str:
    """The note of a rule change's move up: the new window's totals it was judged on."""
    return f"rules {rules_hash[:RULES_HASH_IN_TEXT]}: {miles} miles, {segments / 100:g} segments in {start}..{end}"


def goodwill_entry(miles: int, day: date, reason: str) -> Entry:
    """A goodwill credit: redeemable miles only (goodwill never moves a tier)."""
    return Entry(LedgerEntryKind.ADJUSTMENT, day, miles, GOODWILL_SOURCE,
                 description=entry_description(f"goodwill: {reason}"))


def lot_remaining(amount: int, balance_after: int) -> int:
    """What a credit of `amount` leaves in its lot once the balance is `balance_after`: a
    credit posted while the balance is negative pays the debt first."""
    return min(amount, max(balance_after, 0))


# ---- tier changes ---------------------------------------------------------------------


def upgrade(rules: Rules, tier: str, valid_until: date | None, window_miles: int, window_segments: int,
            day: date, effective_at: datetime | None = None) -> TierChange | None:
    """The UPGRADE a qualifying activity of `day` gives, the window's totals including it."""
    decision = engine.upgrade_decision(rules, tier, valid_until, window_miles, window_segments, day)
    if decision is None:
        return None
    return TierChange(decision.tier, TierChangeReason.UPGRADE, decision.since, decision.valid_until,
                      effective_at=effective_at)


def review_window(rules: Rules, valid_until: date) -> tuple[date, date]:
    """The window whose totals the review of `valid_until` counts."""
    return cal.retention_window(valid_until, rules.window_months)


def review(rules: Rules, tier: str, since: date, valid_until: date, miles: int, segments: int) -> TierChange:
    """The review of `valid_until` (RULES.md "Retention"), the review_window's totals
    given: a RETENTION keeps `since`, a DOWNGRADE starts on the day after validUntil;
    effective at 00:00 UTC of the decision's day."""
    start, end = review_window(rules, valid_until)
    decision = engine.review_decision(rules, tier, valid_until, miles, segments)
    retained = decision.reason == "RETENTION"
    return TierChange(
        decision.tier, TierChangeReason.RETENTION if retained else TierChangeReason.DOWNGRADE,
        since if retained else decision.since, decision.valid_until,
        note=f"review of validUntil {valid_until}: {miles} miles, {segments / 100:g} segments in {start}..{end}",
        effective_at=datetime.combine(decision.since, time(0), tzinfo=timezone.utc),
    )


# ---- a member's book in memory ------------------------------------------------------------

# The calendar's pure functions, cached: a book replays years of postings, and their
# dates repeat.
_credit_expiry = functools.lru_cache(maxsize=None)(cal.credit_expiry)
_window = functools.lru_cache(maxsize=None)(cal.window)
_retention_window = functools.lru_cache(maxsize=None)(cal.retention_window)


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


@dataclass(slots=True)
class BookEvent:
    """A tier change of a MemberBook: `cause` is the index of the entry that caused it."""

    from_tier: str
    change: TierChange
    cause: int | None
    actor: str


class MemberBook:
    """One member's ledger in memory, applied in date order as the services and the
    daily jobs apply it: entries, credit lots, the running balance, tier changes.

    Entries refer to each other (bonus -> flight, event -> cause, lot -> entry) by their
    index in `entries`; the writer gives the ids. Starts from the member's state (a new
    member: STANDARD since enrolment, nothing posted); `start` is the first day activity
    may be dated (the window totals are kept per month from a window before it)."""

    def __init__(self, rules: Rules, card_number: str, family_name: str, *, since: date, start: date,
                 tier: str = "STANDARD", valid_until: date | None = None) -> None:
        self.rules = rules
        self.card_number, self.name_key = card_number, family_name_key(family_name)
        self.tier, self.since, self.valid_until = tier, since, valid_until
        self.balance = 0
        self.entries: list[Entry] = []
        self.lots: list[list] = []  # [entry index, expires_on, remaining, expired], in expiry order
        self.first_lot = 0  # lots before it have nothing left
        self.events: list[BookEvent] = []
        # Qualifying miles and segments per month, from a window before `start`.
        self.first_month = _month_index(start) - rules.window_months
        self.miles: list[int] = []
        self.segments: list[int] = []

    # -- helpers

    def _totals(self, start: date, end: date) -> tuple[int, int]:
        """Qualifying totals of the months from start's to end's."""
        low = max(0, _month_index(start) - self.first_month)
        high = _month_index(end) - self.first_month + 1
        return sum(self.miles[low:high]), sum(self.segments[low:high])

    def _qualify(self, day: date, miles: int, segments: int) -> None:
        month = _month_index(day) - self.first_month
        if month >= len(self.miles):
            grow = month + 1 - len(self.miles)
            self.miles += [0] * grow
            self.segments += [0] * grow
        self.miles[month] += miles
        self.segments[month] += segments

    def _post(self, entry: Entry) -> int:
        self.entries.append(entry)
        self.balance += entry.redeemable_miles
        index = len(self.entries) - 1
        if entry.redeemable_miles > 0:  # a credit: its lot
            expires_on = _credit_expiry(entry.activity_date, self.rules.credit_validity_months)
            self.lots.append([index, expires_on, lot_remaining(entry.redeemable_miles, self.balance), 0])
        return index

    def _change(self, change: TierChange, actor: str, cause: int | None = None) -> None:
        self.events.append(BookEvent(self.tier, change, cause, actor))
        self.tier, self.since, self.valid_until = change.to_tier, change.since, change.valid_until

    # -- the daily jobs

    def run_jobs(self, as_of: date, review_actor: str = REVIEW_ACTOR) -> None:
        """What the daily jobs did on every day before `as_of`, in date order: the review
        of every validUntil < as_of and the expiry of every credit whose last day is < as_of."""
        while True:
            while self.first_lot < len(self.lots) and self.lots[self.first_lot][2] == 0:
                self.first_lot += 1
            expiry = self.lots[self.first_lot][1] if self.first_lot < len(self.lots) else None
            expiry = expiry if expiry is not None and expiry < as_of else None
            due = self.valid_until if self.tier != "STANDARD" and self.valid_until < as_of else None
            if due is not None and (expiry is None or due <= expiry):
                miles, segments = self._totals(*_retention_window(due, self.rules.window_months))
                self._change(review(self.rules, self.tier, self.since, due, miles, segments), review_actor)
            elif expiry is not None:
                self._expire(expiry)
            else:
                return

    def _expire(self, last_day: date) -> None:
        """loyalty.jobs' expiry on the day after `last_day`: what is left of every lot
        good through `last_day` or earlier moves to `expired`."""
        expired = []
        for lot in self.lots[self.first_lot:]:
            if lot[1] > last_day:
                break
            if lot[2]:
                expired.append((lot[1], lot[2]))
                lot[3] += lot[2]
                lot[2] = 0
        entry = expiry_entry(expired)
        if entry is not None:
            self._post(entry)

    # -- postings

    def flight(self, flight: FlightDetails, earning: engine.FlightEarning, ref: str, *, actor: str,
               posted_at: Callable[[date], datetime] | None = None) -> None:
        """flightAccrue: the flight, its bonus at the tier held before it, and the upgrade
        its window's totals give (effective when posted: posted_at(the flight's day),
        asked only for an upgrade)."""
        tier_before = self.tier
        index = self._post(flight_entry(flight, earning, ref, flight_fingerprint(self.card_number, flight)))
        bonus = bonus_entry(self.rules, tier_before, flight, earning.redeemable_miles, bonus_for=index)
        if bonus is not None:
            self._post(bonus)
        if not (earning.qualifying_miles or earning.segments_hundredths):
            return
        self._qualify(flight.date, earning.qualifying_miles, earning.segments_hundredths)
        miles, segments = self._totals(*_window(flight.date, self.rules.window_months))
        change = upgrade(self.rules, self.tier, self.valid_until, miles, segments, flight.date,
                         None if posted_at is None else posted_at(flight.date))
        if change is not None:
            self._change(change, actor, cause=index)

    def partner(self, source: str, day: date, miles: int, text: str | None, ref: str) -> None:
        """partnerAccrue: redeemable miles only."""
        print_ = partner_fingerprint(self.card_number, self.name_key, miles, day, text)
        self._post(partner_entry(source, miles, day, text, ref, print_))

    def redeem(self, source: str, day: date, miles: int, text: str) -> bool:
        """milesRedeem when the balance covers it (False: INSUFFICIENT_MILES, nothing
        posted): earliest-expiring credits first."""
        if miles > self.balance:
            return False
        open_lots = [(i, lot[1], lot[2]) for i, lot in enumerate(self.lots[self.first_lot:], self.first_lot) if lot[2]]
        for i, taken in engine.consume_fifo(open_lots, miles):
            self.lots[i][2] -= taken
        self._post(redemption_entry(source, miles, day, text))
        return True
