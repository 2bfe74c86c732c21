"""Batched posting of import rows (loyalty.ledger.ActivityImport, `loyalty import
activities`): many rows per transaction, a savepoint per row, yet each row's outcome is
what posting the rows one by one would give, a row that fails midway costs only itself,
a re-run is idempotent by externalRef, and the ledger reconciles."""

from __future__ import annotations

from datetime import date

import pytest

from api import bulk
from loyalty import engine, jobs, ledger
from loyalty.changes import refresh_members
from loyalty.ledger import FlightDetails, flight_accrue
from loyalty.models import CreditLot, LedgerEntry, LedgerEntryKind, TierEvent
from loyalty.rules import load_rules
from members.access import Caller, Role
from members.addresses import Address
from members.cards import card_number
from members.enums import MemberStatus, Tier
from members.errors import DomainError
from members.models import Member
from members.partners import add_partner
from members.services import Enrolment, enroll, set_status
from tests.cli.conftest import read_csv, write_csv
from tests.cli.test_import_activities import HEADER, flight, partner

RULES = load_rules()
TODAY = date(2026, 3, 20)
DAY = date(2026, 3, 15)
ADMIN = Caller(Role.ADMIN, "t")


async def new_member(family: str, given: str) -> Member:
    return await enroll(ADMIN, Enrolment(family, given, Address("CN", "Beijing")), today=date(2025, 1, 2))


async def import_file(tmp_path, rows: list[list], batch_size: int = 50) -> tuple[bulk.ImportSummary, list[dict]]:
    source = write_csv(tmp_path / "acts.csv", HEADER, rows)
    rejects = tmp_path / "acts.rejected.csv"
    summary = await bulk.import_activities(
        source, rejects, rules=RULES, today=TODAY, progress=lambda *_: None, batch_size=batch_size)
    return summary, read_csv(rejects)


async def assert_ledger_reconciles() -> None:
    checked, differences = await jobs.reconcile()
    assert checked == await Member.all().count()
    assert differences == []


async def test_bad_rows_in_the_middle_of_a_batch_are_rejected_alone_and_a_rerun_is_idempotent(db, tmp_path):
    wang, li = await new_member("Wang", "Fang"), await new_member("Li", "Lei")
    suspended = await new_member("Zhao", "Min")
    await set_status(ADMIN, str(suspended.id), MemberStatus.SUSPENDED, "fraud check")
    await add_partner("HOTELCO", "Hotel Co")
    rows = [
        flight(wang.card_number, "F-1", DAY, 1000, "J"),
        flight(li.card_number, "F-2", DAY, 14000, "J"),            # 42,000 qualifying miles: SILVER
        flight(wang.card_number, "F-3", DAY, 1000, "ZZ"),           # unknown fare class
        partner(li.card_number, "Wrong", "H-1", DAY, "HOTELCO", 500),  # NAME_MISMATCH
        flight(suspended.card_number, "F-4", DAY, 1000, "Y"),      # MEMBER_NOT_ACTIVE
        flight(card_number(33_333_333), "F-5", DAY, 1000, "Y"),    # no such member
        flight(wang.card_number, "F-1", DAY, 1200, "J"),           # F-1 again, other content, same batch
        flight(wang.card_number, "F-1", DAY, 1000, "J"),           # F-1 again, same content: already present
        partner(wang.card_number, "wang", "H-2", DAY, "HOTELCO", 700),
        flight(li.card_number, "F-6", DAY, 1000, "Y"),              # at SILVER now: earns the SILVER bonus
    ]
    summary, rejects = await import_file(tmp_path, rows)
    assert (summary.taken, summary.present, summary.rejected) == (4, 1, 5)
    assert [(r["external_ref"], r["reason"].split(":")[0]) for r in rejects] == [
        ("F-3", "INVALID"), ("H-1", "NAME_MISMATCH"), ("F-4", "MEMBER_NOT_ACTIVE"), ("F-5", "NOT_FOUND"),
        ("F-1", "IDEMPOTENCY_CONFLICT"),
    ]
    wang, li = await Member.get(id=wang.id), await Member.get(id=li.id)
    assert wang.redeemable_miles == 3_000 + 700
    assert li.tier is Tier.SILVER
    assert await TierEvent.filter(member_id=li.id).count() == 1
    assert await LedgerEntry.filter(member_id=li.id, kind=LedgerEntryKind.TIER_BONUS).count() == 1
    # members_changed ran in the batch's transaction: the stored retention totals are current.
    await refresh_members([li.id], RULES, TODAY)
    assert (await Member.get(id=li.id)).retention_miles == li.retention_miles
    await assert_ledger_reconciles()

    again, rejects_again = await import_file(tmp_path, rows)
    assert (again.taken, again.present, again.rejected) == (0, 5, 5)
    assert [r["external_ref"] for r in rejects_again] == [r["external_ref"] for r in rejects]
    assert (await Member.get(id=wang.id)).redeemable_miles == 3_700
    assert await LedgerEntry.filter(kind=LedgerEntryKind.FLIGHT).count() == 3
    await assert_ledger_reconciles()


@pytest.mark.parametrize("batch_size", [1, 3, 50])
async def test_batch_size_does_not_change_any_outcome(db, tmp_path, batch_size):
    wang = await new_member("Wang", "Fang")
    rows = [flight(wang.card_number, f"F-{n}", DAY, 1000 + n, "Y") for n in range(7)]
    rows.insert(3, flight(wang.card_number, "F-bad", DAY, 0, "Y"))  # distance 0
    summary, rejects = await import_file(tmp_path, rows, batch_size)
    assert (summary.taken, summary.present, summary.rejected) == (7, 0, 1)
    assert [r["external_ref"] for r in rejects] == ["F-bad"]
    earned = sum(engine.flight_accrual(RULES, 1000 + n, "Y").redeemable_miles for n in range(7))
    assert (await Member.get(id=wang.id)).redeemable_miles == earned
    await assert_ledger_reconciles()


async def test_a_row_failing_midway_is_rolled_back_to_its_savepoint(db, tmp_path, monkeypatch):
    # The row's entries, lot and balance change are written, then it fails: its savepoint
    # is rolled back, the rows before and after it in the batch stay.
    wang = await new_member("Wang", "Fang")
    real_write = ledger._write_flight

    async def failing_write(connection, actor, member_id, flight_, earning, ref, *args):
        written = await real_write(connection, actor, member_id, flight_, earning, ref, *args)
        if ref == "F-2":
            raise DomainError("MEMBER_NOT_ACTIVE", "failed after its writes", ("input", "cardNumber"))
        return written

    monkeypatch.setattr(ledger, "_write_flight", failing_write)
    summary, rejects = await import_file(tmp_path, [
        flight(wang.card_number, f"F-{n}", DAY, 1000, "Y") for n in (1, 2, 3)
    ])
    assert (summary.taken, summary.present, summary.rejected) == (2, 0, 1)
    assert rejects[0]["reason"] == "MEMBER_NOT_ACTIVE: failed after its writes"
    assert sorted(await LedgerEntry.all().values_list("external_ref", flat=True)) == ["F-1", "F-3"]
    assert await CreditLot.all().count() == 2
    assert (await Member.get(id=wang.id)).redeemable_miles == 2 * engine.flight_accrual(RULES, 1000, "Y").redeemable_miles
    await assert_ledger_reconciles()


async def test_an_external_ref_posted_meanwhile_is_a_replay_of_the_winner(db, tmp_path, monkeypatch):
    # Another writer posts F-2 after the batch's lookups: the batch's insert meets the
    # unique (source, externalRef) index in F-2's savepoint, which alone is rolled back,
    # and the row is answered as already present.
    wang = await new_member("Wang", "Fang")
    details = FlightDetails("CA", "1501", DAY, "PEK", "SHA", 1000, "Y")
    await flight_accrue(Caller(Role.AIRLINE, "ca"), wang.card_number, details, "F-2", rules=RULES, today=TODAY)

    async def nothing_posted(connection, model, columns, key, values):
        return []

    monkeypatch.setattr(ledger, "select_in", nothing_posted)
    summary, _ = await import_file(tmp_path, [flight(wang.card_number, f"F-{n}", DAY, 1000, "Y") for n in (1, 2, 3)])
    assert (summary.taken, summary.present, summary.rejected) == (2, 1, 0)
    assert await LedgerEntry.filter(external_ref="F-2").count() == 1
    assert (await Member.get(id=wang.id)).redeemable_miles == 3 * engine.flight_accrual(RULES, 1000, "Y").redeemable_miles
    await assert_ledger_reconciles()
