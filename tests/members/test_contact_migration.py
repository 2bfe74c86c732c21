"""The contact encryption migration on a database that holds plain phones and emails (a
copy of the service from before it): `loyalty migrate` seals every phone and email with
the configured data key, replaces the DUPLICATE keys by their keyed hashes (a CLOSED
member's stay cleared), and afterwards no byte of the SQLite file holds a plain phone or
email. The migrations after it run on stored rows too (a credit lot: 0022_books adds a
NOT NULL column to credit_lot, 0 for the lots already there). Run in a subprocess on its own database (an SQLite file, or a PostgreSQL database
beside the session's): the session's ORM is left alone."""

from __future__ import annotations

import importlib
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from api.settings import load_settings
from members.contacts import ContactKeys, decode_key, new_key
from tests.api.loyalty_factories import loyalty_cli

pytestmark = pytest.mark.db

# Migrate up to the migration before the encryption one (whatever its number).
_BEFORE = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from api.db import tortoise_config

async def main():
    await migrate(config=tortoise_config(sys.argv[1]), target=sys.argv[2])
    await Tortoise.close_connections()

asyncio.run(main())
"""

PLAIN = [
    # id, phone, phone_key, email, email_key, status
    (1, "+86 138 5555 0001", "+8613855550001", "Wang.Fang@Example.com", "wang.fang@example.com", "ACTIVE"),
    (2, "+44 20 5555 0002", None, "gone@example.org", None, "CLOSED"),  # a closed member's keys are cleared
    (3, None, None, "only.mail@example.net", "only.mail@example.net", "ACTIVE"),
]
PLAIN_BYTES = [b"5555 0001", b"8613855550001", b"Wang.Fang", b"wang.fang", b"5555 0002", b"gone@example", b"only.mail"]


def _previous_migration() -> str:
    folder = Path(__file__).resolve().parents[2] / "migrations"
    name = next(p.stem for p in folder.glob("*_contact_encryption.py"))
    module = importlib.import_module(f"migrations.{name}")
    app, previous = module.Migration.dependencies[0]
    return f"{app}.{previous}"


_INSERT = (
    "INSERT INTO member (id, card_number, family_name, given_name, status, phone, email, phone_key, email_key,"
    " address_country, address_city, office_id, branch_id, enrolled_at, tier, tier_since, redeemable_miles,"
    " lifecycle_stage, value_segment, retention_miles, retention_segments)"
    " VALUES ({}, {}, 'F', 'G', {}, {}, {}, {}, {}, 'CN', 'Beijing', 9999, 9999, '2026-01-01 00:00:00+00:00', 0, '2026-01-01',"
    " 0, 'NEW', 'LOW', 0, 0)"
)
# The office the members belong to (codes and ids the shipped region data does not use).
_REGION = [
    "INSERT INTO branch (id, code, name) VALUES (9999, 'ZZ', 'Old branch')",
    "INSERT INTO office (id, code, name, city, country, branch_id) VALUES (9999, 'ZZ01', 'Old office', 'Beijing', 'CN', 9999)",
]
# Member 1's credit and its lot.
_LOT = [
    "INSERT INTO ledger_entry (id, kind, activity_date, posted_at, qualifying_miles, qualifying_segments, redeemable_miles,"
    " source, member_id) VALUES (1, 'FLIGHT', '2026-01-02', '2026-01-02 00:00:00+00:00', 100, 1, 100, 'TEST', 1)",
    "INSERT INTO credit_lot (id, expires_on, remaining, member_id, entry_id) VALUES (1, '2029-01-31', 100, 1, 1)",
]
_LOTS = "SELECT id, remaining, expired FROM credit_lot"
_SELECT = "SELECT id, phone_cipher, phone_hash, email_cipher, email_hash FROM member ORDER BY id"


def _sqlite_plain_members(path: Path) -> None:
    db = sqlite3.connect(path)
    for statement in _REGION:
        db.execute(statement)
    for member_id, phone, phone_key, email, email_key, status in PLAIN:
        db.execute(_INSERT.format(*"???????"), (member_id, f"CA00000000{member_id}", status, phone, email, phone_key, email_key))
    for statement in _LOT:
        db.execute(statement)
    db.commit()
    db.close()


def _postgres_url(session_url: str) -> str:
    """A database of its own beside the session's (its name ends in "test" too)."""
    parsed = urlparse(session_url)
    return parsed._replace(path=parsed.path.removesuffix("test") + "migration_test").geturl()


async def _postgres(url: str, work):
    import asyncpg

    from tests.conftest import _recreate_postgres

    if work is None:
        await _recreate_postgres(url)
        return None
    parsed = urlparse(url)
    connection = await asyncpg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                                       password=parsed.password, database=parsed.path.lstrip("/"))
    try:
        return await work(connection)
    finally:
        await connection.close()


async def _drop_postgres(url: str) -> None:
    import asyncpg

    parsed = urlparse(url)
    admin = await asyncpg.connect(host=parsed.hostname, port=parsed.port or 5432, user=parsed.username or "postgres",
                                  password=parsed.password, database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')
    finally:
        await admin.close()


async def _postgres_plain_members(connection) -> None:
    marks = [f"${n}" for n in range(1, 8)]
    for statement in _REGION:
        await connection.execute(statement)
    for member_id, phone, phone_key, email, email_key, status in PLAIN:
        await connection.execute(_INSERT.format(*marks), member_id, f"CA00000000{member_id}", status, phone, email, phone_key, email_key)
    for statement in _LOT:
        await connection.execute(statement)


async def test_migrate_seals_the_plain_phones_and_emails_and_leaves_no_plain_byte(database, tmp_path):
    postgres = database.database_url.startswith("postgres")
    url = _postgres_url(database.database_url) if postgres else f"sqlite://{tmp_path / 'old.db'}"
    if postgres:
        await _postgres(url, None)
    before = subprocess.run([sys.executable, "-c", _BEFORE, url, _previous_migration()],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert before.returncode == 0, before.stderr
    if postgres:
        await _postgres(url, _postgres_plain_members)
    else:
        _sqlite_plain_members(tmp_path / "old.db")
        assert all(plain in (tmp_path / "old.db").read_bytes() for plain in PLAIN_BYTES)  # the check sees them before

    data_key, lookup_key = new_key(), new_key()
    done = loyalty_cli(["migrate"], tmp_path, url, LOYALTY_DATA_KEYS=data_key, LOYALTY_LOOKUP_KEY=lookup_key)
    assert done.returncode == 0, done.stderr
    assert "contact_encryption" in done.stderr and "PUBLIC demo keys" not in done.stderr

    if postgres:
        rows = [tuple(row) for row in await _postgres(url, lambda connection: connection.fetch(_SELECT))]
        lots = [tuple(row) for row in await _postgres(url, lambda connection: connection.fetch(_LOTS))]
        await _drop_postgres(url)
    else:
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("old.db"))
        assert [plain for plain in PLAIN_BYTES if plain in raw] == []
        db = sqlite3.connect(tmp_path / "old.db")
        rows = db.execute(_SELECT).fetchall()
        lots = db.execute(_LOTS).fetchall()
        db.close()
    assert lots == [(1, 100, 0)]
    keys = ContactKeys([decode_key(data_key)], decode_key(lookup_key))
    opened = [(i, keys.open(p, "phone"), ph, keys.open(e, "email"), eh) for i, p, ph, e, eh in rows]
    assert opened == [
        (1, PLAIN[0][1], keys.lookup_hash("+8613855550001", "phone"), PLAIN[0][3], keys.lookup_hash("wang.fang@example.com", "email")),
        (2, PLAIN[1][1], None, PLAIN[1][3], None),
        (3, None, None, PLAIN[2][3], keys.lookup_hash("only.mail@example.net", "email")),
    ]
    # Nothing is sealed with the demo keys the test session uses.
    assert not any(p and p.startswith(load_settings(environ={}, dotenv=None).contact_keys().current_id) for _, p, *_ in rows)
