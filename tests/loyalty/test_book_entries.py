"""The reversal, rule change and goodwill entries of loyalty.book, and the rows their
writers store.

First what each function returns, spelled out (amounts, source, externalRef,
description and where it is cut); then, through the real services (ledgerEntryReverse,
the rule change's apply, the goodwill credit), every column of every stored row except
the id and posted_at compared with what the function gives for the same posting, written
as every book entry is written (loyalty.ledger.entry_values)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from care.goodwill import credit_goodwill
from loyalty import book, ledger
from loyalty.book import Entry
from loyalty.jobs import reconcile
from loyalty.ledger import entry_values
from loyalty.models import LedgerEntry, LedgerEntryKind, TierChangeReason, TierEvent
from loyalty.rulechange import change_rules, rules_file_hash
from loyalty.rules import DEFAULT_RULES_PATH, load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.enums import Tier
from members.models import Member
from members.services import Enrolment, enroll

RULES = load_rules()
D = date.fromisoformat
ADMIN = Caller(Role.ADMIN, "t")
AIRLINE = Caller(Role.AIRLINE, "ca-system")
FLIGHT, BONUS, ADJUSTMENT, REVERSAL = (
    LedgerEntryKind.FLIGHT, LedgerEntryKind.TIER_BONUS, LedgerEntryKind.ADJUSTMENT, LedgerEntryKind.REVERSAL)
HASH = "0123456789abcdef" * 4  # a rules file's SHA-256, in hex


def original(entry_id: int, kind: LedgerEntryKind, day: str, miles: int, segments: int, redeemable: int):
    """An entry as its reversal reads it (book.Posted)."""
    return SimpleNamespace(id=entry_id, kind=kind, activity_date=D(day), qualifying_miles=miles,
                           qualifying_segments=segments, redeemable_miles=redeemable)


# ---- what the functions return ------------------------------------------------------------


def test_a_reversal_negates_its_entry_on_the_entry_s_day():
    flight = original(41, FLIGHT, "2026-03-15", 1_100, 110, 1_100)
    assert book.reversal_entry(flight, "AIRLINE", "no-show") == Entry(
        REVERSAL, D("2026-03-15"), -1_100, "AIRLINE", qualifying_miles=-1_100, qualifying_segments=-110,
        description="Reversal of entry 41 (FLIGHT): no-show")
    bonus = original(42, BONUS, "2026-03-15", 0, 0, 275)
    assert book.reversal_entry(bonus, "AIRLINE", "no-show") == Entry(
        REVERSAL, D("2026-03-15"), -275, "AIRLINE", description="Reversal of bonus entry 42 (TIER_BONUS): no-show")
    redemption = original(43, LedgerEntryKind.REDEMPTION, "2026-04-01", 0, 0, -2_000)
    assert book.reversal_entry(redemption, "ADMIN", "refund") == Entry(
        REVERSAL, D("2026-04-01"), 2_000, "ADMIN", description="Reversal of entry 43 (REDEMPTION): refund")


def test_a_reversal_keeps_the_longest_reason_whole_and_its_note_is_cut_to_the_column():
    reason = "r" * ledger.MAX_REASON
    bonus = original(9_223_372_036_854_775_807, BONUS, "2026-03-15", 0, 0, 275)
    text = book.reversal_entry(bonus, "ADMIN", reason).description
    assert text == f"Reversal of bonus entry 9223372036854775807 (TIER_BONUS): {reason}"
    assert len(text) == 258 <= book.MAX_ENTRY_DESCRIPTION == 300
    assert book.reversal_note(41, "no-show") == "reversal of entry 41: no-show"
    note = book.reversal_note(41, "n" * 300)
    assert note == "reversal of entry 41: " + "n" * 278 and len(note) == book.MAX_TIER_NOTE == 300


def test_a_rule_adjustment_s_ref_names_the_file_the_member_and_the_day():
    assert (book.RULE_CHANGE_REF_PREFIX, book.RULES_HASH_IN_REF, book.RULES_HASH_IN_TEXT) == ("RULE_CHANGE-", 16, 12)
    first = "RULE_CHANGE-0123456789abcdef-5-2026-03-10"
    assert book.rule_adjustment_ref(HASH, 5, D("2026-03-10")) == first
    assert book.rule_adjustment_ref(HASH, 5, D("2026-03-10"), {first}) == f"{first}-2"
    assert book.rule_adjustment_ref(HASH, 5, D("2026-03-10"), {first, f"{first}-2"}) == f"{first}-3"
    assert book.rule_adjustment_ref(HASH, 5, D("2026-03-11"), {first}) == "RULE_CHANGE-0123456789abcdef-5-2026-03-11"


def test_a_rule_adjustment_and_its_note():
    ref = "RULE_CHANGE-0123456789abcdef-5-2026-03-10"
    assert book.rule_adjustment_entry(HASH, ref, D("2026-03-10"), 3_000, 100, -3_000) == Entry(
        ADJUSTMENT, D("2026-03-10"), -3_000, "SYSTEM", qualifying_miles=3_000, qualifying_segments=100,
        external_ref=ref, description="rules change 0123456789ab: the flights of 2026-03-10 earned again")
    assert book.rule_change_note(HASH, 12_000, 450, D("2025-12-01"), D("2026-11-30")) == (
        "rules 0123456789ab: 12000 miles, 4.5 segments in 2025-12-01..2026-11-30")


def test_only_the_system_s_adjustments_with_a_rule_change_ref_are_rule_adjustments():
    ref = "RULE_CHANGE-abc-1-2026-03-10"
    assert book.is_rule_adjustment(ADJUSTMENT, "SYSTEM", ref)
    assert not book.is_rule_adjustment(ADJUSTMENT, "GOODWILL", None)
    assert not book.is_rule_adjustment(ADJUSTMENT, "GOODWILL", ref)
    assert not book.is_rule_adjustment(ADJUSTMENT, "SYSTEM", None)
    assert not book.is_rule_adjustment(ADJUSTMENT, "SYSTEM", "RULE-CHANGE-abc-1-2026-03-10")
    assert not book.is_rule_adjustment(LedgerEntryKind.PARTNER, "HOTELCO", ref)
    assert not book.is_rule_adjustment(LedgerEntryKind.EXPIRY, "SYSTEM", None)


def test_a_goodwill_credit_is_redeemable_miles_with_the_reason_cut_to_the_column():
    assert book.GOODWILL_SOURCE == "GOODWILL"
    assert book.goodwill_entry(1_500, D("2026-03-20"), "bag lost on CA1501") == Entry(
        ADJUSTMENT, D("2026-03-20"), 1_500, "GOODWILL", description="goodwill: bag lost on CA1501")
    reason = "x" * 280 + "0123456789ABCDEFGHIJ"  # 300, care.goodwill's MAX_REASON
    text = book.goodwill_entry(1, D("2026-03-20"), reason).description
    assert text == "goodwill: " + "x" * 280 + "0123456789" and len(text) == 300


# ---- what the services store --------------------------------------------------------------


async def stored(entry_id: int) -> dict:
    """Every column of the stored row but the id and posted_at."""
    (row,) = await LedgerEntry.filter(id=entry_id).values()
    assert row["posted_at"].tzinfo is not None
    return {column: value for column, value in row.items() if column not in ("id", "posted_at")}


def written(member_id: int, entry: Entry, reverses_id: int | None = None) -> dict:
    """The row entry_values writes for `entry`, every column but the id and posted_at."""
    values = entry_values(member_id, entry, reverses_id=reverses_id)
    del values["posted_at"]
    return {"reverses_id": None, **values}


async def new_member(family: str = "Wang") -> Member:
    address = Address(country="CN", province="Beijing", city="Beijing")
    return await enroll(ADMIN, Enrolment(family_name=family, given_name="Fang", address=address), today=D("2021-12-01"))


async def fly(member: Member, ref: str, km: int, fare_class: str, day: str) -> ledger.PostingResult:
    details = ledger.FlightDetails("CA", "1501", D(day), "PEK", "SHA", km, fare_class)
    return await ledger.flight_accrue(AIRLINE, member.card_number, details, ref, rules=RULES, today=D(day))


async def test_a_flight_s_reversal_and_its_bonus_s_are_stored_as_the_book_says(db):
    member = await new_member()
    await Member.filter(id=member.id).update(tier=Tier.SILVER, tier_valid_until=D("2027-12-31"))
    flight = (await fly(member, "R1", 1_000, "Y", "2026-03-15")).entry  # 1,100 + TIER_BONUS 275
    bonus = await LedgerEntry.get(bonus_for_id=flight.id)
    before = datetime.now(timezone.utc)
    result = await ledger.reverse(AIRLINE, str(flight.id), "no-show", "k1", rules=RULES, today=D("2026-03-20"))
    reversal, bonus_reversal = await LedgerEntry.filter(kind=REVERSAL).order_by("id")
    assert result.entry.id == reversal.id and before <= reversal.posted_at <= datetime.now(timezone.utc)
    assert await stored(reversal.id) == {
        "member_id": member.id, "kind": REVERSAL, "activity_date": D("2026-03-15"), "qualifying_miles": -1_100,
        "qualifying_segments": -110, "redeemable_miles": -1_100, "source": "AIRLINE", "external_ref": None,
        "fingerprint": None, "description": f"Reversal of entry {flight.id} (FLIGHT): no-show", "carrier": None,
        "flight_number": None, "origin": None, "destination": None, "distance_km": None, "fare_class": None,
        "bonus_for_id": None, "reverses_id": flight.id,
    }
    assert await stored(reversal.id) == written(member.id, book.reversal_entry(flight, "AIRLINE", "no-show"), flight.id)
    assert await stored(bonus_reversal.id) == written(
        member.id, book.reversal_entry(bonus, "AIRLINE", "no-show"), bonus.id)
    assert (bonus_reversal.redeemable_miles, bonus_reversal.description, bonus_reversal.reverses_id) == (
        -275, f"Reversal of bonus entry {bonus.id} (TIER_BONUS): no-show", bonus.id)


async def test_a_reversal_that_moves_the_tier_down_is_stored_as_the_book_says(db):
    member = await new_member()
    await fly(member, "R1", 14_000, "J", "2026-01-10")  # 42,000: SILVER
    gold = (await fly(member, "R2", 13_000, "J", "2026-03-15")).entry  # 39,000 (+ 9,750 bonus): GOLD
    reason = "r" * ledger.MAX_REASON
    result = await ledger.reverse(ADMIN, str(gold.id), reason, "k1", rules=RULES, today=D("2026-03-20"))
    assert result.entry.description == f"Reversal of entry {gold.id} (FLIGHT): {reason}"
    assert await stored(result.entry.id) == written(member.id, book.reversal_entry(gold, "ADMIN", reason), gold.id)
    event = await TierEvent.get(reason=TierChangeReason.REVERSAL)
    assert event.note == book.reversal_note(gold.id, reason) == f"reversal of entry {gold.id}: {reason}"


async def test_a_goodwill_credit_and_its_reversal_are_stored_as_the_book_says(db):
    member = await new_member()
    now = datetime.now(timezone.utc)
    result = await credit_goodwill(ADMIN, str(member.id), 1_500, "  bag  lost on CA1501 ", rules=RULES,
                                   today=D("2026-03-20"), now=now)
    assert await stored(result.entry.id) == {
        "member_id": member.id, "kind": ADJUSTMENT, "activity_date": D("2026-03-20"), "qualifying_miles": 0,
        "qualifying_segments": 0, "redeemable_miles": 1_500, "source": "GOODWILL", "external_ref": None,
        "fingerprint": None, "description": "goodwill: bag lost on CA1501", "carrier": None, "flight_number": None,
        "origin": None, "destination": None, "distance_km": None, "fare_class": None, "bonus_for_id": None,
        "reverses_id": None,
    }
    assert await stored(result.entry.id) == written(
        member.id, book.goodwill_entry(1_500, D("2026-03-20"), "bag lost on CA1501"))

    longest = "x" * 280 + "0123456789ABCDEFGHIJ"
    cut = await credit_goodwill(ADMIN, str(member.id), 2, longest, rules=RULES, today=D("2026-03-21"), now=now)
    assert cut.entry.description == "goodwill: " + "x" * 280 + "0123456789"
    assert cut.credit.reason == longest  # the audit keeps it whole
    assert await stored(cut.entry.id) == written(member.id, book.goodwill_entry(2, D("2026-03-21"), longest))

    undone = await ledger.reverse(ADMIN, str(result.entry.id), "given twice", "k1", rules=RULES, today=D("2026-03-22"))
    assert undone.entry.description == f"Reversal of entry {result.entry.id} (ADJUSTMENT): given twice"
    assert undone.entry.redeemable_miles == -1_500
    assert await stored(undone.entry.id) == written(
        member.id, book.reversal_entry(result.entry, "ADMIN", "given twice"), result.entry.id)
    assert await reconcile() == (1, [])


def write_rules(tmp_path: Path) -> Path:
    """The shipped rules with J earning 400 % (was 300 %) and SILVER from 10,000 miles."""
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    for old, new in (("J = 300", "J = 400"), ("upgrade_miles = 40000", "upgrade_miles = 10000"),
                     ("retain_miles = 35000", "retain_miles = 9000")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_rule_change_s_adjustments_are_stored_as_the_book_says(db, tmp_path):
    member = await new_member()
    flight = (await fly(member, "A1", 3_000, "J", "2026-03-10")).entry  # 9,000; 12,000 under the new rules
    path = write_rules(tmp_path)
    new, digest = load_rules(path), rules_file_hash(path)
    today = D("2026-11-20")
    await change_rules(new, digest, current=RULES, today=today, apply=True)
    (first,) = await LedgerEntry.filter(kind=ADJUSTMENT)
    ref = f"RULE_CHANGE-{digest[:16]}-{member.id}-2026-03-10"
    assert await stored(first.id) == {
        "member_id": member.id, "kind": ADJUSTMENT, "activity_date": D("2026-03-10"), "qualifying_miles": 3_000,
        "qualifying_segments": 100, "redeemable_miles": 3_000, "source": "SYSTEM", "external_ref": ref,
        "fingerprint": None, "description": f"rules change {digest[:12]}: the flights of 2026-03-10 earned again",
        "carrier": None, "flight_number": None, "origin": None, "destination": None, "distance_km": None,
        "fare_class": None, "bonus_for_id": None, "reverses_id": None,
    }
    assert await stored(first.id) == written(
        member.id, book.rule_adjustment_entry(digest, ref, D("2026-03-10"), 3_000, 100, 3_000))
    event = await TierEvent.get(reason=TierChangeReason.RULE_CHANGE)
    assert (event.to_tier, event.note) == (
        Tier.SILVER, f"rules {digest[:12]}: 12000 miles, 4 segments in 2025-12-01..2026-11-30")
    assert event.note == book.rule_change_note(digest, 12_000, 400, D("2025-12-01"), D("2026-11-30"))

    # The flight reversed, the same file takes the day's adjustment back under the next number.
    await ledger.reverse(ADMIN, str(flight.id), "no-show", "a1", rules=new, today=today)
    await change_rules(new, digest, current=RULES, today=today, apply=True)
    second = await LedgerEntry.filter(kind=ADJUSTMENT).order_by("-id").first()
    assert (second.external_ref, second.redeemable_miles) == (f"{ref}-2", -3_000)
    assert book.rule_adjustment_ref(digest, member.id, D("2026-03-10"), {ref}) == f"{ref}-2"
    assert await stored(second.id) == written(
        member.id, book.rule_adjustment_entry(digest, f"{ref}-2", D("2026-03-10"), -3_000, -100, -3_000))
    assert await reconcile() == (1, [])


@pytest.mark.parametrize("entry", ["reversal", "goodwill", "rule adjustment"])
def test_the_entries_fit_the_ledger_s_columns(entry):
    """Every text the three entries store fits its column (lengths of loyalty.models)."""
    longest = {
        "reversal": book.reversal_entry(
            original(9_223_372_036_854_775_807, BONUS, "2026-03-15", 0, 0, 1), "ADMIN", "r" * ledger.MAX_REASON),
        "goodwill": book.goodwill_entry(1, D("2026-03-15"), "g" * 300),
        "rule adjustment": book.rule_adjustment_entry(
            HASH, book.rule_adjustment_ref(HASH, 9_223_372_036_854_775_807, D("2026-03-15")), D("2026-03-15"),
            1, 1, 1),
    }[entry]
    assert len(longest.description) <= book.MAX_ENTRY_DESCRIPTION
    assert len(longest.source) <= 16
    assert longest.external_ref is None or len(longest.external_ref) <= ledger.MAX_EXTERNAL_REF
