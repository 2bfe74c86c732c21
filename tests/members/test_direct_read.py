"""The member read sent straight to the driver (members.driver.DirectRead,
members.queries._member_by, issue 12): it reads committed rows only, also while another
request's transaction is open on SQLite's one connection, and a partial row (the
columns a compiled read asks for) cannot be saved."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from tortoise import connections
from tortoise.exceptions import IncompleteInstanceError, OperationalError
from tortoise.transactions import in_transaction

from members.access import Role, resolve_caller
from members.addresses import Address
from members.bulk_insert import model_from_row
from members.driver import DIRECT
from members.models import Member
from members.queries import _member_by, find_member
from members.services import Enrolment, enroll
from tests.api.conftest import office_address
from tests.statements import counted_statements


async def _member() -> Member:
    admin = await resolve_caller(Role.ADMIN, "admin", None)
    enrolment = Enrolment("Zhao", "Lei", Address(**office_address("PEK01")), phone="+86 136 00000001")
    return await enroll(admin, enrolment, today=date(2026, 6, 1))


class _RolledBack(Exception):
    pass


async def test_a_read_during_another_transaction_sees_only_committed_rows(db):
    member = await _member()
    before = member.redeemable_miles
    updated = asyncio.Event()

    async def other_request() -> Member:  # its own context: not inside the transaction below
        await updated.wait()
        return await _member_by("id", member.id, ("redeemable_miles",))

    read = asyncio.create_task(other_request())
    with pytest.raises(_RolledBack):
        async with in_transaction() as connection:
            mark = "$1" if connection.capabilities.dialect == "postgres" else "?"
            await connection.execute_query(f'UPDATE "member" SET "redeemable_miles" = 999999 WHERE "id" = {mark}', [member.id])
            updated.set()
            # Let the read reach the driver (or, on SQLite, wait for the transaction's lock).
            for _ in range(20):
                await asyncio.sleep(0)
            raise _RolledBack
    assert (await read).redeemable_miles == before


async def test_a_read_asks_for_its_columns_and_the_scopes(db):
    member = await _member()
    caller = await resolve_caller(Role.MEMBER, str(member.id), None)
    with counted_statements() as statements:
        found = await find_member(caller, member_id=str(member.id), columns=("given_name",))
    assert found.given_name == "Lei" and found.office_id == member.office_id and found.tier == member.tier
    assert statements == [
        'SELECT "id", "card_number", "given_name", "branch_id", "tier", "office_id" FROM "member" WHERE "id" = '
        + ("$1" if connections.get("default").capabilities.dialect == "postgres" else "?")
    ]
    with pytest.raises(AttributeError):
        found.phone_cipher  # noqa: B018 - not read
    with pytest.raises(IncompleteInstanceError):
        await found.save()  # a partial row is never written back
    # Outside the caller's scope: none, as without columns.
    other = await resolve_caller(Role.MEMBER, str(member.id + 1), None)
    assert await find_member(other, member_id=str(member.id), columns=("given_name",)) is None


async def test_a_database_error_is_tortoises(db):
    connection = connections.get("default")
    mark = "$1" if connection.capabilities.dialect == "postgres" else "?"
    with pytest.raises(OperationalError):
        await DIRECT.fetch(connection, f'SELECT "id" FROM "no_such_table" WHERE "id" = {mark}', [1])


async def test_a_partial_row_is_the_model_tortoise_makes_of_the_same_columns(db):
    # model_from_row builds a partial row itself (its conversions looked up once per
    # shape): the same instance as Tortoise's own _init_from_db of those columns.
    member = await _member()
    projection = Member._meta.fields_db_projection
    every = tuple(projection.values())
    _, [row] = await connections.get("default").execute_query(
        f'SELECT {", ".join(f"{chr(34)}{c}{chr(34)}" for c in every)} FROM "member" WHERE "id" = {member.id}')
    whole = model_from_row(Member, every, tuple(row))
    for columns in [("id", "tier"), ("id", "card_number", "status", "birth_date", "enrolled_at", "consent_greetings",
                                     "lifecycle_stage", "erased_at", "office_id", "redeemable_miles"), every[:-1]]:
        values = tuple(getattr(whole, Member._meta.fields_db_projection_reverse[c]) for c in columns)
        ours = model_from_row(Member, columns, values)
        tortoises = Member._init_from_db(**dict(zip(columns, values)))
        assert ours._partial and vars(ours) == vars(tortoises), columns


async def test_sqlite_reads_on_its_own_reader_beside_an_open_write_transaction(db):
    # members.driver._reader: on a WAL file the member read runs on a read-only sqlite3
    # connection on the event loop's thread, so it neither waits for the writer's
    # transaction (the client's lock is held below until the read has answered) nor sees
    # its uncommitted row; the statement is still logged for the statement counts.
    from members import driver

    client = connections.get("default")
    if client.capabilities.dialect != "sqlite":
        pytest.skip("a reader of its own: SQLite only (PostgreSQL reads on the pool)")
    member = await _member()
    before = member.redeemable_miles
    assert driver._reader(client) is not None
    go = asyncio.Event()

    async def other_request() -> Member:  # its own context: not inside the transaction below
        await go.wait()
        return await asyncio.wait_for(_member_by("id", member.id, ("redeemable_miles",)), 10)

    read = asyncio.create_task(other_request())
    async with in_transaction() as connection:
        await connection.execute_query('UPDATE "member" SET "redeemable_miles" = 999999 WHERE "id" = ?', [member.id])
        assert client._lock.locked()
        with counted_statements() as statements:
            go.set()
            found = await read  # answered while the transaction holds the lock
        assert found.redeemable_miles == before and len(statements) == 1
    assert (await _member_by("id", member.id, ("redeemable_miles",))).redeemable_miles == 999999


def test_an_in_memory_database_has_no_reader():
    from tortoise.backends.sqlite.client import SqliteClient

    from members import driver

    assert driver._open_reader(SqliteClient(":memory:", connection_name="x")) is None
