"""`loyalty members reencrypt`: after a new data key is listed first (the old one kept
after it) and the lookup key changed, every phone and email is sealed with the new key
and hashed with the new lookup key, in batches with progress; a second run rewrites
nothing; a key left out too early is one line, not a traceback."""

from __future__ import annotations

from datetime import date

from members.access import Caller, Role
from members.addresses import Address
from members.contacts import ContactKeys, decode_key, key_id, new_key
from members.enums import MemberStatus
from members.models import Member
from members.services import Enrolment, enroll, set_status
from tests.api.loyalty_factories import loyalty_cli
from tests.cli.conftest import one_line_error

def run(settings, tmp_path, *args: str, **env: str):
    return loyalty_cli(list(args), tmp_path, settings.database_url, **env)


ADMIN = Caller(Role.ADMIN, "admin-test")
PEOPLE = [("+86 138 7777 0001", "one@example.com"), ("+86 138 7777 0002", None), (None, "three@example.com")]


async def _members() -> list[Member]:
    made = [await enroll(ADMIN, Enrolment("F", f"G{n}", Address("CN", "Beijing"), phone=phone, email=email),
                         today=date(2026, 1, 5)) for n, (phone, email) in enumerate(PEOPLE)]
    await set_status(ADMIN, str(made[1].id), MemberStatus.CLOSED, "moved away")
    return made


async def test_reencrypt_moves_every_value_to_the_new_keys(db, tmp_path):
    made = await _members()
    new_data, new_lookup = new_key(), new_key()
    # The session's values are sealed with the demo key: `demo` names it after the new one.
    env = {"LOYALTY_DATA_KEYS": f"{new_data},demo", "LOYALTY_LOOKUP_KEY": new_lookup}
    done = run(db, tmp_path, "members", "reencrypt", "--batch", "2", **env)
    assert done.returncode == 0, done.stderr
    new_id = key_id(decode_key(new_data))
    assert done.stdout == f"members reencrypt: 3 members with a phone or email, 3 rewritten (data key {new_id})\n"
    assert done.stderr.splitlines()[-1] == "members reencrypt: [####################] 3/3 (100%)"

    keys = ContactKeys([decode_key(new_data)], decode_key(new_lookup))
    rows = {m.id: m for m in await Member.all()}
    for member, (phone, email) in zip(made, PEOPLE):
        row = rows[member.id]
        assert keys.is_current(row.phone_cipher) and keys.is_current(row.email_cipher)
        assert (keys.open(row.phone_cipher, "phone"), keys.open(row.email_cipher, "email")) == (phone, email)
    assert rows[made[0].id].phone_hash == keys.lookup_hash("+8613877770001", "phone")
    assert rows[made[2].id].email_hash == keys.lookup_hash("three@example.com", "email")
    assert (rows[made[1].id].phone_hash, rows[made[1].id].email_hash) == (None, None)  # CLOSED: stays cleared

    again = run(db, tmp_path, "members", "reencrypt", **env)
    assert again.stdout == f"members reencrypt: 3 members with a phone or email, 0 rewritten (data key {new_id})\n"
    # The old key left out while values still need it (here: the new key only, values
    # sealed with yet another key): one line naming the setting.
    lost = run(db, tmp_path, "members", "reencrypt", LOYALTY_DATA_KEYS=new_key(), LOYALTY_LOOKUP_KEY=new_lookup)
    assert one_line_error(lost, 1) == f"loyalty: a phone is sealed with key '{new_id}', which LOYALTY_DATA_KEYS does not hold"


async def test_a_bad_batch_size_is_one_line(db, tmp_path):
    done = run(db, tmp_path, "members", "reencrypt", "--batch", "0")
    assert "'0' is not a positive whole number" in one_line_error(done, 2)


async def test_a_new_lookup_key_before_the_old_one_finds_every_member_before_and_after_reencrypt(db):
    """LOYALTY_LOOKUP_KEY=<new>,<old>: sign-in by phone, DUPLICATE and the import find the
    members still hashed with the old key; `members reencrypt` hashes them with the new
    one, after which the old key can go."""
    from datetime import datetime, timezone

    import pytest

    from api.settings import load_settings
    from members import contacts
    from members.addresses import AddressBook
    from members.credentials import set_password, sign_in
    from members.errors import DomainError
    from members.contact_rotation import reseal_contacts
    from members.services import ImportedMember, MemberImport

    today, now = date(2026, 1, 5), datetime(2026, 1, 5, 8, tzinfo=timezone.utc)
    here = Address("CN", "Beijing")
    member = await enroll(ADMIN, Enrolment("F", "G9", here, phone="+86 138 7777 0009", email="r@example.com"), today=today)
    await set_password(ADMIN, str(member.id), "correct horse battery", now=now)
    session_keys, new_lookup = contacts.current(), new_key()
    rotating = load_settings(environ={"LOYALTY_LOOKUP_KEY": f"{new_lookup},demo"}, dotenv=None).contact_keys()
    contacts.configure(rotating)
    try:
        assert (await sign_in("+8613877770009", "correct horse battery", now=now)).member.id == member.id
        with pytest.raises(DomainError) as duplicate:
            await enroll(ADMIN, Enrolment("H", "J", here, phone="+86-138-7777-0009"), today=today)
        assert (duplicate.value.code, duplicate.value.field) == ("DUPLICATE", ("input", "phone"))
        importer = MemberImport(ADMIN, today=today, address_book=await AddressBook.load())
        outcomes = await importer.enroll([
            ImportedMember(Enrolment("H", "J", here, phone="+8613877770009")),  # another person, the same phone
            ImportedMember(Enrolment("F", "G9", here, email="R@Example.com")),  # the member again, without a card
        ])
        assert [getattr(o, "code", o) for o in outcomes] == ["DUPLICATE", False]

        assert (await reseal_contacts()).rewritten == 1
        row = await Member.get(id=member.id)
        assert row.phone_hash == rotating.lookup_hash("+8613877770009", "phone")
        contacts.configure(load_settings(environ={"LOYALTY_LOOKUP_KEY": new_lookup}, dotenv=None).contact_keys())
        assert (await sign_in("+8613877770009", "correct horse battery", now=now)).member.id == member.id
    finally:
        contacts.configure(session_keys)
