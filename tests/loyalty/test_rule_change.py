"""A rules change previewed and applied (loyalty.rulechange).

The new rules of these tests: J earns 400 % (was 300 %), and SILVER is reached with
10,000 qualifying miles (was 40,000; retained with 9,000). The run's day is 2026-11-20:
the re-earning period starts 2023-11-01 (credits of the last 36 months are still good),
the new window is 2025-12-01 .. 2026-11-30.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest

from loyalty import ledger
from loyalty.jobs import reconcile
from loyalty.models import (
    JobRunStatus, LedgerEntry, LedgerEntryKind, RulesChangeRun, TierChangeReason, TierEvent,
)
from loyalty.rulechange import (
    DayChange, LedgerLine, MemberDifference, change_rules, member_change, reearning_start, rules_file_hash,
)
from loyalty.rules import DEFAULT_RULES_PATH, load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.enums import MemberStatus, Tier
from members.models import Member
from members.services import Enrolment, enroll, set_status

RULES = load_rules()
D = date.fromisoformat
TODAY = D("2026-11-20")
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "t")
FLIGHT, REVERSAL, ADJUSTMENT = LedgerEntryKind.FLIGHT, LedgerEntryKind.REVERSAL, LedgerEntryKind.ADJUSTMENT


def new_rules_text(j_percent: int = 400) -> str:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    for old, new in (("J = 300", f"J = {j_percent}"), ("upgrade_miles = 40000", "upgrade_miles = 10000"),
                     ("retain_miles = 35000", "retain_miles = 9000")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    return text


def write_rules(tmp_path: Path, j_percent: int = 400) -> Path:
    path = tmp_path / f"rules-{j_percent}.toml"
    path.write_text(new_rules_text(j_percent), encoding="utf-8")
    return path


NEW = replace(RULES, fare_classes=MappingProxyType({**RULES.fare_classes, "J": 400}), tiers=(
    RULES.tiers[0], replace(RULES.tiers[1], upgrade_miles=10_000, retain_miles=9_000), *RULES.tiers[2:]))


def flight(entry_id: int, day: str, km: int, fare_class: str, miles: int, segments: int) -> LedgerLine:
    return LedgerLine(entry_id, FLIGHT, "AIRLINE", f"F{entry_id}", D(day), miles, segments, miles, km, fare_class)


# ---- the pure replay ----------------------------------------------------------------------


def test_reearning_period_and_window():
    assert reearning_start(RULES, NEW, TODAY) == D("2023-11-01")
    assert reearning_start(RULES, replace(NEW, window_months=48), TODAY) == D("2022-12-01")


def test_flights_are_earned_again_per_day():
    lines = [
        flight(1, "2026-03-10", 3_000, "J", 9_000, 300),  # J: 12,000 under the new rules
        flight(2, "2026-03-10", 1_000, "Y", 1_100, 110),  # Y unchanged
        flight(3, "2026-05-01", 2_000, "J", 6_000, 300),  # reversed: earns nothing either way
        LedgerLine(4, REVERSAL, "ADMIN", None, D("2026-05-01"), -6_000, -300, -6_000, reverses_id=3),
        LedgerLine(5, LedgerEntryKind.REDEMPTION, "MEMBER", None, D("2026-06-01"), 0, 0, -2_000),
        flight(6, "2022-01-10", 1_000, "J", 3_000, 300),  # before the period: kept
    ]
    change = member_change(NEW, lines, tier="STANDARD", today=TODAY, since=D("2023-11-01"))
    assert change.days == (DayChange(D("2026-03-10"), 3_000, 100, 3_000),)
    # Window 2025-12..2026-11: 9,000 + 1,100 + 6,000 - 6,000 + 3,000 re-earned.
    assert (change.window_miles, change.window_segments) == (13_100, 510)
    assert (change.tier_after, change.decision.since, change.decision.valid_until) == (
        "SILVER", TODAY, D("2028-10-31"))
    assert change.decision.tier == "SILVER"


def test_earlier_adjustments_count_and_a_second_run_finds_nothing():
    lines = [
        flight(1, "2026-03-10", 3_000, "J", 9_000, 300),
        LedgerLine(7, ADJUSTMENT, "SYSTEM", "RULE_CHANGE-abc-1-2026-03-10", D("2026-03-10"), 3_000, 100, 3_000),
    ]
    change = member_change(NEW, lines, tier="SILVER", today=TODAY, since=D("2023-11-01"))
    assert change.days == () and change.decision is None and not change.changed
    # Back to 250 %: 7,500 for the flight, 4,500 less than the ledger holds; no tier drops.
    lower = replace(NEW, fare_classes=MappingProxyType({**NEW.fare_classes, "J": 250}))
    change = member_change(lower, lines, tier="SILVER", today=TODAY, since=D("2023-11-01"))
    assert change.days == (DayChange(D("2026-03-10"), -4_500, -150, -4_500),)
    assert change.tier_after == "SILVER" and change.decision is None
    # A goodwill ADJUSTMENT (source GOODWILL) is not a rule adjustment: it is left alone.
    goodwill = LedgerLine(8, ADJUSTMENT, "GOODWILL", None, D("2026-03-10"), 0, 0, 500)
    assert member_change(NEW, [*lines, goodwill], tier="SILVER", today=TODAY, since=D("2023-11-01")).days == ()


def test_a_reversed_flight_takes_its_adjustment_back():
    lines = [
        flight(1, "2026-03-10", 3_000, "J", 9_000, 300),
        LedgerLine(7, ADJUSTMENT, "SYSTEM", "RULE_CHANGE-abc-1-2026-03-10", D("2026-03-10"), 3_000, 100, 3_000),
        LedgerLine(9, REVERSAL, "ADMIN", None, D("2026-03-10"), -9_000, -300, -9_000, reverses_id=1),
    ]
    change = member_change(NEW, lines, tier="STANDARD", today=TODAY, since=D("2023-11-01"))
    assert change.days == (DayChange(D("2026-03-10"), -3_000, -100, -3_000),)


def test_a_fare_class_missing_from_the_new_chart_is_kept_as_posted():
    chart = {letter: percent for letter, percent in NEW.fare_classes.items() if letter != "J"}
    without_j = replace(NEW, fare_classes=MappingProxyType(chart))
    change = member_change(without_j, [flight(1, "2026-03-10", 3_000, "J", 9_000, 300)], tier="STANDARD",
                           today=TODAY, since=D("2023-11-01"))
    assert (change.days, change.kept_flights, change.tier_after) == ((), 1, "STANDARD")


# ---- preview and apply over the database -----------------------------------------------------


async def member(name: str) -> Member:
    return await enroll(ADMIN, Enrolment(name, "Fang", Address(country="CN", province="Beijing", city="Beijing")),
                        today=D("2021-12-01"))


async def fly(who: Member, day: str, km: int, fare_class: str, ref: str) -> LedgerEntry:
    details = ledger.FlightDetails("CA", "1501", D(day), "PEK", "SHA", km, fare_class)
    return (await ledger.flight_accrue(AIRLINE, who.card_number, details, ref, rules=RULES, today=D(day))).entry


@pytest.fixture
async def members(db):
    """A: J 3,000 km on 2026-03-10 (9,000 -> 12,000: SILVER). B: Y only (unchanged).
    C: J 1,000 km on 2026-02-01 (3,000 -> 4,000) and a reversed J flight. D: SUSPENDED
    with a J flight (not examined). E: a J flight of 2022 (before the period)."""
    a, b, c, d, e = [await member(name) for name in ("Wang", "Li", "Zhao", "Sun", "Zhou")]
    await fly(a, "2026-03-10", 3_000, "J", "A1")
    await fly(b, "2026-04-01", 1_000, "Y", "B1")
    await fly(c, "2026-02-01", 1_000, "J", "C1")
    c2 = await fly(c, "2026-02-02", 2_000, "J", "C2")
    await ledger.reverse(ADMIN, str(c2.id), "no-show", "c2", rules=RULES, today=D("2026-02-10"))
    await fly(d, "2026-03-10", 1_000, "J", "D1")
    await set_status(ADMIN, str(d.id), MemberStatus.SUSPENDED, "test")
    await fly(e, "2022-01-10", 1_000, "J", "E1")
    return a, b, c, d, e


async def footprint() -> tuple:
    entries = await LedgerEntry.all().order_by("id").values_list("id", "redeemable_miles")
    events = await TierEvent.all().count()
    rows = await Member.all().order_by("id").values_list("id", "tier", "redeemable_miles", "tier_valid_until")
    return entries, events, rows


async def test_preview_writes_nothing_and_apply_does_what_it_showed(members, tmp_path):
    a, _, c, _, _ = members
    path = write_rules(tmp_path)
    new, digest = load_rules(path), rules_file_hash(path)
    before = await footprint()
    listed: list[MemberDifference] = []
    progress: list[tuple[int, int]] = []
    preview = await change_rules(new, digest, current=RULES, today=TODAY, each=listed.append,
                                 progress=lambda done, total: progress.append((done, total)), batch_size=2)
    assert await footprint() == before
    assert await RulesChangeRun.all().count() == 0
    assert (preview.examined, preview.changed, preview.entries) == (4, 2, 2)
    assert (preview.redeemable_miles, preview.qualifying_miles, preview.qualifying_segments) == (4_000, 4_000, 200)
    assert preview.transitions == {"STANDARD->SILVER": 1}
    assert listed == preview.sample == [
        MemberDifference(a.card_number, "STANDARD", "SILVER", D("2028-10-31"), 3_000, 3_000, 100, 1),
        MemberDifference(c.card_number, "STANDARD", "STANDARD", None, 1_000, 1_000, 100, 1),
    ]
    assert progress[0] == (0, 4) and progress[-1] == (4, 4) and len(progress) == 3  # batches of 2

    applied = await change_rules(new, digest, current=RULES, today=TODAY, apply=True, actor="admin:ops",
                                 rules_path=str(path))
    assert applied == preview
    (adjustment,) = await LedgerEntry.filter(member_id=a.id, kind=LedgerEntryKind.ADJUSTMENT)
    assert (adjustment.activity_date, adjustment.qualifying_miles, adjustment.qualifying_segments,
            adjustment.redeemable_miles, adjustment.source) == (D("2026-03-10"), 3_000, 100, 3_000, "SYSTEM")
    assert adjustment.external_ref == f"RULE_CHANGE-{digest[:16]}-{a.id}-2026-03-10"
    row = await Member.get(id=a.id)
    assert (row.tier, row.tier_since, row.tier_valid_until, row.redeemable_miles) == (
        Tier.SILVER, TODAY, D("2028-10-31"), 12_000)
    (event,) = await TierEvent.filter(member_id=a.id)
    assert (event.reason, event.from_tier, event.to_tier, event.actor) == (
        TierChangeReason.RULE_CHANGE, Tier.STANDARD, Tier.SILVER, "admin:ops")
    assert (await Member.get(id=c.id)).redeemable_miles == 4_000
    assert await reconcile() == (5, [])
    (run,) = await RulesChangeRun.all()
    assert (run.rules_hash, run.rules_path, run.actor, run.day, run.status) == (
        digest, str(path), "admin:ops", TODAY, JobRunStatus.DONE)
    assert run.counts["changed"] == 2 and run.counts["transitions"] == {"STANDARD->SILVER": 1}

    # Twice: one effect.
    after = await footprint()
    again = await change_rules(new, digest, current=RULES, today=TODAY, apply=True, actor="admin:ops")
    assert (again.examined, again.changed, again.entries, again.transitions) == (4, 0, 0, {})
    assert await footprint() == after
    assert await RulesChangeRun.filter(status=JobRunStatus.DONE).count() == 2


async def test_a_later_file_counts_the_earlier_adjustments(members, tmp_path):
    a, _, c, _, _ = members
    first = write_rules(tmp_path, 400)
    await change_rules(load_rules(first), rules_file_hash(first), current=RULES, today=TODAY, apply=True)
    second = write_rules(tmp_path, 250)
    # A: 12,000 held -> 7,500 (-4,500; SILVER stays); C: 4,000 -> 2,500 (-1,500).
    report = await change_rules(load_rules(second), rules_file_hash(second), current=RULES, today=TODAY, apply=True)
    assert (report.changed, report.redeemable_miles, report.transitions) == (2, -6_000, {})
    row = await Member.get(id=a.id)
    assert (row.tier, row.redeemable_miles) == (Tier.SILVER, 7_500)
    assert (await Member.get(id=c.id)).redeemable_miles == 2_500
    assert await reconcile() == (5, [])


async def test_a_reversal_reconsiders_a_move_up_by_rule_change(members, tmp_path):
    a, *_ = members
    path = write_rules(tmp_path)
    new = load_rules(path)
    await change_rules(new, rules_file_hash(path), current=RULES, today=TODAY, apply=True)
    assert (await Member.get(id=a.id)).tier is Tier.SILVER
    flight_entry = await LedgerEntry.get(source="AIRLINE", external_ref="A1")
    result = await ledger.reverse(ADMIN, str(flight_entry.id), "no-show", "a1", rules=new, today=TODAY)
    # Without the flight the window holds the day's 3,000 adjustment only: STANDARD again.
    assert result.tier_event is not None
    assert (result.tier_event.reason, result.tier_event.to_tier) == (TierChangeReason.REVERSAL, Tier.STANDARD)
    # The day's adjustment stays until apply runs again, which takes it back.
    again = await change_rules(new, rules_file_hash(path), current=RULES, today=TODAY, apply=True)
    assert (again.changed, again.redeemable_miles, again.transitions) == (1, -3_000, {})
    assert (await Member.get(id=a.id)).redeemable_miles == 0
    refs = await LedgerEntry.filter(member_id=a.id, kind=LedgerEntryKind.ADJUSTMENT).order_by("id").values_list(
        "external_ref", "redeemable_miles")
    base = f"RULE_CHANGE-{rules_file_hash(path)[:16]}-{a.id}-2026-03-10"
    assert refs == [(base, 3_000), (f"{base}-2", -3_000)]
    assert await reconcile() == (5, [])
