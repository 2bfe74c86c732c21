"""A member's personal data without HTTP: every table that refers to a member is a
section of the export (a new one fails here until it is exported or decided), erasure
keeps the card number out of every later enrolment and import, and the member row's
personal columns are erased once."""

from __future__ import annotations

from datetime import date, datetime, timezone

from tortoise import Tortoise
from tortoise.transactions import in_transaction
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance

from members.access import Caller, Role
from members.addresses import Address, AddressBook
from members.cards import card_number
from members.errors import DomainError
from members.models import Member
from members.privacy import ERASED_NAME, erase_personal_columns
from members.services import Enrolment, ImportedMember, MemberImport, enroll
from privacy.erasure import erase_member
from privacy.export import SECTIONS

TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
ADMIN = Caller(Role.ADMIN, "t")
# Tables that refer to a member and are deliberately not sections of their own (none yet).
NOT_EXPORTED: set[str] = set()


def tables_referring_to_members() -> set[str]:
    """Every model with a foreign key or one-to-one field to Member, or a plain column
    that holds a member's id without a key (named member_id or ending in _member_id, as
    the access audit's does), by table."""
    found = set()
    for model in Tortoise.apps["models"].values():
        for name, field in model._meta.fields_map.items():
            if isinstance(field, (ForeignKeyFieldInstance, OneToOneFieldInstance)):
                if field.related_model is Member:
                    found.add(model._meta.db_table)
            elif model is not Member and (
                    name == "member_id" or name.endswith("_member_id")):
                found.add(model._meta.db_table)
    return found


async def test_every_table_that_refers_to_a_member_is_exported(db):
    referring = tables_referring_to_members()
    exported = {section.model._meta.db_table for section in SECTIONS}
    assert referring - exported - NOT_EXPORTED == set(), "a table about members is missing from privacy.export.SECTIONS"
    assert exported <= referring  # a section is one query by member_id
    assert {"ledger_entry", "care_call", "feedback", "tier_event", "member_erasure"} <= referring  # the finder finds
    assert "member_access" in referring  # a member's id without a foreign key is found too


async def test_a_member_id_without_a_foreign_key_is_caught(db):
    """The finder sees a table keyed by a member's id that has no foreign key (as the
    access audit is): such a table cannot slip past the section check."""
    from tortoise import fields
    from tortoise.models import Model

    class Unkeyed(Model):
        id = fields.IntField(primary_key=True)
        member_id = fields.IntField()

        class Meta:
            app = "models"
            table = "unkeyed_probe"

    models = Tortoise.apps["models"]
    models["Unkeyed"] = Unkeyed
    try:
        assert "unkeyed_probe" in tables_referring_to_members()
    finally:
        del models["Unkeyed"]


async def test_an_erased_card_is_never_given_again(db):
    member = await enroll(ADMIN, Enrolment("Wang", "Fang", Address("CN", "Beijing"), phone="+8613900000001"), today=TODAY)
    await erase_member(ADMIN, member.id, "request PRV-9", now=NOW)
    # Enrolment drawing the erased card first draws again.
    fresh = card_number(10_000_001)
    draws = iter([member.card_number, fresh])
    again = await enroll(ADMIN, Enrolment("Wang", "Fang", Address("CN", "Beijing"), phone="+8613900000001"),
                         today=TODAY, new_card_number=lambda: next(draws))
    assert again.card_number == fresh != member.card_number
    # An import naming the erased card under the person's names is refused: the card is another's.
    importer = MemberImport(ADMIN, today=TODAY, address_book=await AddressBook.load())
    (outcome,) = await importer.enroll([ImportedMember(Enrolment("Wang", "Fang", Address("CN", "Beijing")), member.card_number)])
    assert isinstance(outcome, DomainError) and outcome.code == "DUPLICATE"
    assert await Member.filter(card_number=member.card_number).count() == 1


async def test_the_personal_columns_are_erased_once(db):
    member = await enroll(ADMIN, Enrolment("Li", "Na", Address("CN", "Beijing", line="1 Road"), birth_date=date(1990, 1, 2),
                                           email="li@example.com"), today=TODAY)
    async with in_transaction() as connection:
        assert await erase_personal_columns(connection, member.id, NOW) is True
        assert await erase_personal_columns(connection, member.id, NOW) is False
    row = await Member.get(id=member.id)
    assert (row.family_name, row.given_name, row.birth_date, row.email_cipher, row.email_hash, row.address_line) == (
        ERASED_NAME, ERASED_NAME, None, None, None, None)
    assert row.erased_at == NOW and row.card_number == member.card_number
