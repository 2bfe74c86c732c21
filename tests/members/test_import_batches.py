"""Batched enrolment of import rows (members.services.MemberImport): many rows per
transaction, yet each row's outcome is what enrolling the rows one by one would give, and
a row that fails in the database costs only itself."""

from __future__ import annotations

from datetime import date

import pytest

from api import bulk
from members import services
from members.access import Role
from members.addresses import Address, AddressBook
from members.bulk_insert import BulkInsert
from members.cards import card_number
from members.models import Member, RegionAssignment
from members.services import Enrolment, ImportedMember, MemberImport
from tests.cli.conftest import read_csv, write_csv
from tests.cli.test_import_members import HEADER, ROWS
from tests.members.test_tier_count_rollup import assert_rollup_is_the_member_count

TODAY = date(2026, 11, 20)
CALLER = bulk.SystemCaller(Role.ADMIN, bulk.IMPORT_ACTOR)


def row(family: str, given: str, *, card: str | None = None, phone: str | None = None,
        city: str = "Beijing") -> ImportedMember:
    return ImportedMember(Enrolment(family, given, Address("CN", city), phone=phone), card)


async def importer(**kwargs) -> MemberImport:
    return MemberImport(CALLER, today=TODAY, address_book=await AddressBook.load(), **kwargs)


@pytest.mark.parametrize("batch_size", [1, 2, 5])
async def test_batch_size_does_not_change_any_outcome(db, tmp_path, batch_size):
    source = write_csv(tmp_path / "members.csv", HEADER, ROWS)
    rejects = tmp_path / "r.csv"
    summary = await bulk.import_members(source, rejects, today=TODAY, progress=lambda *_: None, batch_size=batch_size)
    assert (summary.taken, summary.present, summary.rejected) == (3, 0, 2)
    assert [(r["family_name"], r["reason"]) for r in read_csv(rejects)] == [
        ("Zhang", "INVALID: cardNumber must be CA followed by 9 digits with a valid check digit"),
        ("Dup", "DUPLICATE: a member with this phone is already enrolled"),  # 王芳's phone, maybe in the same batch
    ]
    assert await Member.all().count() == 3
    assert await RegionAssignment.filter(reason="enrolment", actor="system:import").count() == 3
    await assert_rollup_is_the_member_count()  # tierCounts see the 3 imported members
    again = await bulk.import_members(source, rejects, today=TODAY, progress=lambda *_: None, batch_size=batch_size)
    assert (again.taken, again.present, again.rejected) == (0, 3, 2)
    await assert_rollup_is_the_member_count()


async def test_rows_of_one_batch_see_each_other_in_file_order(db):
    card = card_number(20_000_001)
    outcomes = await (await importer()).enroll([
        row("Wu", "Di", card=card),
        row("Wu", "Di", card=card),  # the same person again: already present
        row("Ma", "Li", card=card),  # another person with that card
        row("Qian", "Yi", phone="13900000001"),
        row("Qian", "Yi", phone="139 0000 0001"),  # no card, same names and phone: present
        row("Sun", "Er", phone="13900000001"),  # another person with that phone
    ])
    assert [o if isinstance(o, bool) else o.message for o in outcomes] == [
        True, False, "this card number belongs to another member", True, False,
        "a member with this phone is already enrolled",
    ]
    assert await Member.all().count() == 2


async def test_a_drawn_card_already_held_is_drawn_again(db):
    held = card_number(30_000_001)
    await (await importer()).enroll([row("Held", "Card", card=held)])
    draws = iter([held, held, card_number(30_000_002), card_number(30_000_003)])
    outcomes = await (await importer(new_card_number=lambda: next(draws))).enroll(
        [row("New", "One"), row("New", "Two")])
    assert outcomes == [True, True]
    assert sorted(await Member.filter(family_name="New").values_list("card_number", flat=True)) == [
        card_number(30_000_002), card_number(30_000_003)]


async def test_a_row_a_concurrent_writer_took_meanwhile_costs_only_itself(db, monkeypatch):
    # Another writer enrols the phone between the batch's lookups and its insert: the
    # lookups below miss it, the insert meets the unique index, and the batch is written
    # again with a savepoint per row, where the lookups see the other writer's member.
    await (await importer()).enroll([row("Other", "Writer", phone="13900000009")])
    real_load = services._Holders.load.__func__
    loads = 0

    async def stale_first_load(cls, connection, rows):
        nonlocal loads
        loads += 1
        holders = await real_load(cls, connection, rows)
        if loads == 1:
            holders.phones.clear()
        return holders

    monkeypatch.setattr(services._Holders, "load", classmethod(stale_first_load))
    outcomes = await (await importer()).enroll([
        row("A", "One"), row("B", "Two", phone="13900000009"), row("C", "Three"),
    ])
    assert [o if isinstance(o, bool) else o.message for o in outcomes] == [
        True, "a member with this phone is already enrolled", True]
    assert loads == 4  # the batch once, then each of its three rows in its savepoint
    assert sorted(await Member.all().values_list("family_name", flat=True)) == ["A", "C", "Other"]
    assert await RegionAssignment.all().count() == 3


async def test_offices_from_the_address_book_are_those_of_enrolment(db):
    from members.addresses import office_for_address

    book = await AddressBook.load()
    for address in [Address("CN", "Beijing"), Address("CN", "Shanghai"), Address("CN", "Nowhere Town"),
                    Address("US", "Springfield"), Address("CN", "shanghai", province="  Shanghai ")]:
        assert book.office_for(address).id == (await office_for_address(address)).id, address


async def test_a_bulk_insert_must_give_every_column_without_a_default(db):
    with pytest.raises(ValueError, match="Member.card_number has no default"):
        BulkInsert(Member, ["family_name", "given_name"])
