"""Phone and email encrypted at rest, over HTTP: sign-in by phone and the DUPLICATE check
work on the keyed hashes, the API shows the phone as given, and neither the member
columns nor (SQLite) the raw database file hold the plain phone or email."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tortoise import connections

from members.contacts import current
from members.models import Member
from members.services import email_hash, phone_hash
from tests.api.conftest import admin_view, enroll, enroll_payload, person, problems
from tests.api.test_member_sign_in import SECRET, set_password, sign_in

PHONE, DIGITS, EMAIL = "+86 139 8765 4321", "+8613987654321", "Secret.Person@Example.com"


async def test_sign_in_by_phone_and_duplicate_work_with_the_column_sealed(api):
    member = await enroll(api, phone=PHONE, email=EMAIL)
    assert (member["phone"], member["email"]) == (PHONE, EMAIL)  # as given, opened for the reader
    assert (await set_password(api, member))["userErrors"] == []
    # Written another way, the same phone: the normalised value's hash finds the member.
    for login in (PHONE, DIGITS, "+86-139-8765-4321"):
        payload = await sign_in(api, login, SECRET)
        assert payload["userErrors"] == [] and payload["member"]["id"] == member["id"]
    assert (await sign_in(api, "+86 139 8765 4320", SECRET))["userErrors"][0]["code"] == "INVALID_CREDENTIALS"
    by_phone = await enroll_payload(api, person(phone=DIGITS))
    by_email = await enroll_payload(api, person(email=EMAIL.lower()))
    assert problems(by_phone) == [("DUPLICATE", ["input", "phone"])]
    assert problems(by_email) == [("DUPLICATE", ["input", "email"])]

    row = await Member.get(id=int(member["id"]))
    keys = current()
    assert row.phone_cipher.startswith(keys.current_id + ":") and PHONE not in row.phone_cipher
    assert (row.phone_hash, row.email_hash) == (phone_hash(PHONE), email_hash(EMAIL))
    assert len(row.phone_hash) == len(row.email_hash) == 32
    assert (keys.open(row.phone_cipher, "phone"), keys.open(row.email_cipher, "email")) == (PHONE, EMAIL)
    assert (await admin_view(api, member))["phone"] == PHONE


async def test_no_column_and_no_byte_of_the_database_file_holds_the_plain_phone(api, settings):
    member = await enroll(api, phone=PHONE, email=EMAIL)
    await api.gql("mutation($input: MemberUpdateInput!) { memberUpdate(input: $input) { member { id } } }",
                  {"input": {"id": member["id"], "phone": "+86 139 1111 2222"}}, as_=("admin",))
    connection = connections.get("default")
    _, rows = await connection.execute_query('SELECT * FROM "member"')
    text = repr([dict(row) for row in rows])
    for plain in ("8765 4321", "87654321", "1111 2222", "11112222", "Secret.Person", "secret.person"):
        assert plain not in text
    if connection.capabilities.dialect != "sqlite":
        return
    path = Path(settings.database_url.removeprefix("sqlite://").split("?")[0])
    # Read in another process: opening and closing the file here would drop this process's
    # POSIX locks on it (SQLite's own, held by the test's connection), and the connection
    # would go on reading an old snapshot in later tests.
    files = [str(p) for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    raw = subprocess.run(["cat", *files], capture_output=True, check=True).stdout
    assert len(raw) > 100_000  # the whole file (region data and all), not an empty one
    for plain in (b"8765 4321", b"87654321", b"1111 2222", b"11112222", b"Secret.Person", b"secret.person"):
        assert plain not in raw
    # The bytes test itself finds what is there: the family name is stored plain.
    assert member["familyName"].encode() in raw
