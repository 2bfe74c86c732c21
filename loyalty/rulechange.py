"""A change of the rules file, previewed and applied (`loyalty rules preview|apply FILE`).

What differs under new rules (RULES.md "Rule changes"):

- **Miles.** Every flight of the re-earning period that is not reversed is earned again
  under the new earning table (fare-class percentages and minimum distance): its
  qualifying miles, qualifying segments and redeemable miles. The period is the months
  whose credits are still good (the credit_validity_months of the rules in force, back
  from the run's month) or the new window (window_months ending with the run's month),
  whichever reaches further back. What differs, per member and activity day, is the
  new earning of the day's flights minus what the ledger holds for them: the flights,
  their reversals, and the RULE_CHANGE adjustments of earlier rule changes (source
  SYSTEM, externalRef RULE_CHANGE-...). Tier bonuses already posted are kept (a new
  bonus_percent applies to flights posted under the new rules), and so are the flights
  of a fare class the new chart does not have (counted in the report).
- **Tier.** Judged as tierStatus judges progress: on the qualifying totals of the new
  window ending with the run's month, with the re-earned miles. A member whose totals
  meet a higher tier's upgrade threshold under the new rules moves up (since the run's
  day, valid as for an upgrade that day). No tier drops: a tier never drops before its
  validUntil, and the new retain thresholds decide at each member's review (the review
  job run under the new rules).
- Only ACTIVE members are examined.

`preview` replays the pure engine (loyalty.engine.flight_accrual, qualified_tier) over
each member's ledger of the period and reports, writing nothing: members examined and
changed, entries, net miles, counts by tier transition, and every changed member (a
sample, and all of them to a CSV). `apply` makes the same decisions and writes them: per
member and day one ADJUSTMENT entry (the differences, signed; a positive one a credit
lot expiring as the day's flights do, a negative one taken from the lots as a reversal
is, which may take the balance below zero) with externalRef
RULE_CHANGE-<first 16 hex of the file's SHA-256>-<member id>-<day> (then -2, -3 for a
later difference of the same day, after a reversal), and the tier change
(reason RULE_CHANGE), in one transaction per member, decided again inside it after the
member's row lock. Applying the same file again finds no difference (the adjustments
make the ledger match it); the unique (source, externalRef) index refuses the same
adjustment twice even to two runs at once. Each run is recorded
(RulesChangeRun: who, when, the file and its hash, the counts).

Cost: a full pass over the ACTIVE members by nature, in keyset batches by id; each batch
costs two reads (the members, and their entries of the period through the (member_id,
activity_date) index) and memory holds one batch. Apply adds a transaction per changed
member.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty import book
from loyalty import calendar as cal
from loyalty import engine, lots
from loyalty.changes import members_changed
from loyalty.events import record_tier_change
from loyalty.ledger import entry_values
from loyalty.models import JobRunStatus, LedgerEntry, LedgerEntryKind, RulesChangeRun, TierChangeReason
from loyalty.rules import Rules
from members.enums import MemberStatus, Tier
from members.models import Member

__all__ = [
    "DayChange", "LedgerLine", "MemberChange", "MemberDifference", "RulesChangeReport",
    "change_rules", "member_change", "rules_file_hash", "reearning_start",
]

BATCH = 200
_LINE_FIELDS = (
    "id", "kind", "source", "external_ref", "activity_date", "qualifying_miles", "qualifying_segments",
    "redeemable_miles", "distance_km", "fare_class", "reverses_id",
)


def rules_file_hash(path: str | Path) -> str:
    """SHA-256 of the file's bytes, in hex: the identity of a rule change."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- the pure replay ----------------------------------------------------------------


@dataclass(frozen=True)
class LedgerLine:
    """A ledger entry as the replay reads it."""

    id: int
    kind: LedgerEntryKind
    source: str
    external_ref: str | None
    activity_date: date
    qualifying_miles: int
    qualifying_segments: int
    redeemable_miles: int
    distance_km: int | None = None
    fare_class: str | None = None
    reverses_id: int | None = None


@dataclass(frozen=True)
class DayChange:
    """What the new rules change of one activity day's flights (signed)."""

    day: date
    qualifying_miles: int
    qualifying_segments: int  # hundredths
    redeemable_miles: int


@dataclass(frozen=True)
class MemberChange:
    days: tuple[DayChange, ...]
    tier_before: str
    decision: engine.TierDecision | None  # the move up, if any
    window_miles: int  # the new window's totals with the re-earned miles
    window_segments: int
    kept_flights: int  # flights of a fare class missing from the new chart

    @property
    def tier_after(self) -> str:
        return self.decision.tier if self.decision is not None else self.tier_before

    @property
    def changed(self) -> bool:
        return bool(self.days) or self.decision is not None


def reearning_start(current: Rules, new: Rules, today: date) -> date:
    """First day of the re-earning period (see the module docstring)."""
    credits = cal.add_months(cal.month_start(today), -current.credit_validity_months)
    return min(credits, cal.window(today, new.window_months)[0])


def member_change(new: Rules, lines: Sequence[LedgerLine], *, tier: str, today: date, since: date) -> MemberChange:
    """What ``new`` rules change for a member holding ``tier`` whose ledger entries from
    ``since`` on are ``lines``: per day, the new earning of the day's flights not reversed
    minus the flights, their reversals and earlier rule adjustments; and the move up the
    new window's totals (with those differences) give. Pure."""
    earning = {
        line.id for line in lines
        if line.kind is LedgerEntryKind.FLIGHT or book.is_rule_adjustment(line.kind, line.source, line.external_ref)
    }
    reversed_ids = {line.reverses_id for line in lines if line.reverses_id is not None}
    held: dict[date, list[int]] = {}
    target: dict[date, list[int]] = {}
    kept = 0
    for line in lines:
        if line.activity_date < since:
            continue
        values = [line.qualifying_miles, line.qualifying_segments, line.redeemable_miles]
        if line.id in earning or line.reverses_id in earning:
            day = held.setdefault(line.activity_date, [0, 0, 0])
            for index, value in enumerate(values):
                day[index] += value
        if line.kind is LedgerEntryKind.FLIGHT and line.id not in reversed_ids:
            if line.distance_km is None or line.fare_class not in new.fare_classes:
                kept += 1
            else:
                earned = engine.flight_accrual(new, line.distance_km, line.fare_class)
                values = [earned.qualifying_miles, earned.segments_hundredths, earned.redeemable_miles]
            day = target.setdefault(line.activity_date, [0, 0, 0])
            for index, value in enumerate(values):
                day[index] += value
    days = []
    for day in sorted(held.keys() | target.keys()):
        difference = [t - h for t, h in zip(target.get(day, [0, 0, 0]), held.get(day, [0, 0, 0]))]
        if any(difference):
            days.append(DayChange(day, *difference))
    start, end = cal.window(today, new.window_months)
    miles = sum(line.qualifying_miles for line in lines if start <= line.activity_date <= end)
    miles += sum(day.qualifying_miles for day in days if start <= day.day <= end)
    segments = sum(line.qualifying_segments for line in lines if start <= line.activity_date <= end)
    segments += sum(day.qualifying_segments for day in days if start <= day.day <= end)
    decision = engine.upgrade_decision(new, tier, None, miles, segments, today)
    return MemberChange(tuple(days), tier, decision, miles, segments, kept)


# ---- the pass over the members --------------------------------------------------------


@dataclass(frozen=True)
class MemberDifference:
    """One changed member, as the report and its CSV list them."""

    card_number: str
    tier_before: str
    tier_after: str
    valid_until: date | None  # of the new tier, when it changes
    redeemable_miles: int
    qualifying_miles: int
    qualifying_segments: int  # hundredths
    days: int  # adjustment entries (activity days)


@dataclass
class RulesChangeReport:
    rules_hash: str
    examined: int = 0  # ACTIVE members read
    changed: int = 0  # of them, members with a difference
    entries: int = 0  # ADJUSTMENT entries (one per member and activity day)
    redeemable_miles: int = 0  # net, signed
    qualifying_miles: int = 0
    qualifying_segments: int = 0  # hundredths
    kept_flights: int = 0
    transitions: dict[str, int] = field(default_factory=dict)  # "SILVER->GOLD": members
    sample: list[MemberDifference] = field(default_factory=list)

    def add(self, difference: MemberDifference, change: MemberChange, sample_size: int) -> None:
        self.changed += 1
        self.entries += difference.days
        self.redeemable_miles += difference.redeemable_miles
        self.qualifying_miles += difference.qualifying_miles
        self.qualifying_segments += difference.qualifying_segments
        if change.decision is not None:
            key = f"{change.tier_before}->{change.tier_after}"
            self.transitions[key] = self.transitions.get(key, 0) + 1
        if len(self.sample) < sample_size:
            self.sample.append(difference)

    def counts(self) -> dict:
        return {
            "examined": self.examined, "changed": self.changed, "entries": self.entries,
            "redeemable_miles": self.redeemable_miles, "qualifying_miles": self.qualifying_miles,
            "qualifying_segments": self.qualifying_segments, "kept_flights": self.kept_flights,
            "transitions": dict(sorted(self.transitions.items())),
        }


def _difference(card: str, change: MemberChange) -> MemberDifference:
    return MemberDifference(
        card, change.tier_before, change.tier_after,
        change.decision.valid_until if change.decision is not None else None,
        sum(d.redeemable_miles for d in change.days), sum(d.qualifying_miles for d in change.days),
        sum(d.qualifying_segments for d in change.days), len(change.days),
    )


async def _lines(member_ids: Sequence[int], since: date, connection: BaseDBAsyncClient | None = None) -> dict[int, list[LedgerLine]]:
    query = LedgerEntry.filter(member_id__in=list(member_ids), activity_date__gte=since)
    if connection is not None:
        query = query.using_db(connection)
    rows = await query.order_by("member_id", "id").values_list("member_id", *_LINE_FIELDS)
    by_member: dict[int, list[LedgerLine]] = {}
    for member_id, entry_id, kind, *values in rows:
        by_member.setdefault(member_id, []).append(LedgerLine(entry_id, LedgerEntryKind(kind), *values))
    return by_member


@dataclass(frozen=True)
class _Run:
    current: Rules
    new: Rules
    rules_hash: str
    today: date
    since: date
    actor: str


async def _apply_member(run: _Run, member_id: int) -> tuple[MemberChange, str, bool]:
    """Decide one member again after its row lock and write the difference; (change,
    card number, whether this transaction wrote it)."""
    async with in_transaction() as connection:
        # First statement: a write on the member's row (adds 0), so that every posting of
        # the member runs wholly before or after this (see loyalty.ledger).
        await lots.change_balance(connection, member_id, 0)
        member = await Member.get(id=member_id).using_db(connection)
        lines = (await _lines([member_id], run.since, connection)).get(member_id, [])
        change = member_change(run.new, lines, tier=Tier(member.tier).name, today=run.today, since=run.since)
        if not change.changed:
            return change, member.card_number, False
        flights_of = {}
        for line in lines:
            if line.kind is LedgerEntryKind.FLIGHT:
                flights_of.setdefault(line.activity_date, []).append(line.id)
        refs = {
            line.external_ref for line in lines if book.is_rule_adjustment(line.kind, line.source, line.external_ref)
        }
        for day in change.days:
            # The first adjustment of this file, member and day; a later one (a flight of
            # the day reversed since) is numbered -2, -3, ...
            ref = book.rule_adjustment_ref(run.rules_hash, member_id, day.day, refs)
            balance = await lots.change_balance(connection, member_id, day.redeemable_miles)
            entry = await LedgerEntry.create(**entry_values(member_id, book.rule_adjustment_entry(
                run.rules_hash, ref, day.day, day.qualifying_miles, day.qualifying_segments, day.redeemable_miles,
            )), using_db=connection)
            if day.redeemable_miles > 0:
                expires_on = cal.credit_expiry(day.day, run.current.credit_validity_months)
                await lots.add_lot(connection, entry, day.redeemable_miles, balance, expires_on)
            elif day.redeemable_miles < 0:
                await lots.take_from_lots(
                    connection, member_id, -day.redeemable_miles, own_entry_ids=flights_of.get(day.day, ()))
        if change.decision is not None:
            start, end = cal.window(run.today, run.new.window_months)
            await record_tier_change(
                connection, member, to_tier=Tier[change.decision.tier], reason=TierChangeReason.RULE_CHANGE,
                since=change.decision.since, valid_until=change.decision.valid_until, actor=run.actor,
                note=book.rule_change_note(run.rules_hash, change.window_miles, change.window_segments, start, end),
                recorded_on=run.today,
            )
        await members_changed(connection, [member_id], run.new, run.today)
    return change, member.card_number, True


async def change_rules(
    new: Rules,
    rules_hash: str,
    *,
    current: Rules,
    today: date,
    apply: bool = False,
    actor: str = "system:rules",
    rules_path: str = "",
    progress: Callable[[int, int], None] | None = None,
    each: Callable[[MemberDifference], None] | None = None,
    batch_size: int = BATCH,
    sample_size: int = 10,
) -> RulesChangeReport:
    """Preview (``apply`` False: nothing written) or apply the ``new`` rules (whose file
    has SHA-256 ``rules_hash``) over every ACTIVE member, in keyset batches by id.
    ``each`` is called with every changed member (the CSV). An applying run is recorded
    in RulesChangeRun, FAILED with the error if it stops."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    run = _Run(current, new, rules_hash, today, reearning_start(current, new, today), actor)
    report = RulesChangeReport(rules_hash)
    record = None
    if apply:
        record = await RulesChangeRun.create(
            rules_hash=rules_hash, rules_path=rules_path[:300], actor=actor[:100], day=today,
            status=JobRunStatus.RUNNING, started_at=datetime.now(timezone.utc),
        )
    try:
        await _pass(run, report, apply, progress, each, batch_size, sample_size)
    except BaseException as error:
        if record is not None:
            await RulesChangeRun.filter(id=record.id).update(
                status=JobRunStatus.FAILED, finished_at=datetime.now(timezone.utc),
                outcome=f"{type(error).__name__}: {error}"[:1000], counts=report.counts())
        raise
    if record is not None:
        await RulesChangeRun.filter(id=record.id).update(
            status=JobRunStatus.DONE, finished_at=datetime.now(timezone.utc), counts=report.counts(),
            outcome=f"{report.changed} of {report.examined} members changed, {report.entries} entries")
    return report


async def _pass(
    run: _Run, report: RulesChangeReport, apply: bool, progress, each, batch_size: int, sample_size: int
) -> None:
    active = Member.filter(status=MemberStatus.ACTIVE)
    total = await active.count()
    if progress:
        progress(0, total)
    last_id = 0
    while True:
        batch = await (active.filter(id__gt=last_id).order_by("id").limit(batch_size)
                       .values_list("id", "card_number", "tier"))
        if not batch:
            break
        lines = await _lines([member_id for member_id, _, _ in batch], run.since)
        for member_id, card, tier in batch:
            change = member_change(
                run.new, lines.get(member_id, []), tier=Tier(tier).name, today=run.today, since=run.since)
            if apply and change.changed:
                try:
                    change, card, _ = await _apply_member(run, member_id)
                except IntegrityError:
                    # Another run of the same file adjusted this member meanwhile: its change.
                    change = MemberChange((), Tier(tier).name, None, 0, 0, 0)
            report.examined += 1
            report.kept_flights += change.kept_flights
            if change.changed:
                difference = _difference(card, change)
                report.add(difference, change, sample_size)
                if each is not None:
                    each(difference)
        last_id = batch[-1][0]
        if progress:
            progress(report.examined, max(total, report.examined))

