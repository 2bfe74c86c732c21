"""The running balance and credit lots of a member, moved inside the caller's transaction.

Invariant (proved by `loyalty ledger reconcile`):
    member.redeemable_miles == SUM(ledger redeemable_miles)
    SUM(lot.remaining)      == max(member.redeemable_miles, 0)

Every balance change here is one UPDATE of the column by itself (RETURNING the new
balance), so it is atomic without SELECT ... FOR UPDATE (a no-op on SQLite). On PostgreSQL the UPDATE's row lock on the
member then serialises the rest of the transaction for that member, which is why lots
are read only after the balance has been changed. Services call `change_balance` (or
`debit_if_covered`) as the FIRST statement of their transaction: see ledger.py on why
that matters on SQLite too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from loyalty.book import lot_remaining
from loyalty.engine import consume_fifo
from loyalty.models import CreditLot, LedgerEntry
from members.bulk_insert import BulkInsert
from members.enums import MemberStatus
from members.models import Member


async def _add_to_balance(
    connection: BaseDBAsyncClient, member_id: int, delta: int, *, require_active: bool, at_least: int | None = None
) -> int | None:
    """`UPDATE member SET redeemable_miles = redeemable_miles + delta` on the member's row,
    only if ACTIVE (`require_active`) and holding at least `at_least`; the new balance
    (RETURNING: one statement, where an UPDATE then a SELECT took two), None if no row
    qualified."""
    marks = iter([f"${n}" for n in range(1, 5)] if connection.capabilities.dialect == "postgres" else ["?"] * 4)
    table = Member._meta.db_table
    sql = f'UPDATE "{table}" SET "redeemable_miles" = "redeemable_miles" + {next(marks)} WHERE "id" = {next(marks)}'
    values: list = [delta, member_id]
    if require_active:
        sql += f' AND "status" = {next(marks)}'
        values.append(MemberStatus.ACTIVE.value)
    if at_least is not None:
        sql += f' AND "redeemable_miles" >= {next(marks)}'
        values.append(at_least)
    rows = await connection.execute_query_dict(sql + ' RETURNING "redeemable_miles"', values)
    return int(rows[0]["redeemable_miles"]) if rows else None


LOT_COLUMNS = ("entry_id", "member_id", "expires_on", "remaining", "expired")


@cache
def lot_insert() -> BulkInsert:
    """Built on first use: the models' field maps exist once Tortoise is initialised."""
    return BulkInsert(CreditLot, LOT_COLUMNS)


async def change_balance(
    connection: BaseDBAsyncClient, member_id: int, delta: int, *, require_active: bool = False
) -> int | None:
    """Add `delta` (any sign, 0 included: it still takes the row lock) to the balance,
    unconditionally. With `require_active`, only an ACTIVE member's row is touched.
    Returns the new balance, or None when no row was updated (unknown or not active)."""
    return await _add_to_balance(connection, member_id, delta, require_active=require_active)


async def debit_if_covered(connection: BaseDBAsyncClient, member_id: int, amount: int) -> int | None:
    """Take `amount` from an ACTIVE member's balance only if the balance covers it: the
    conditional UPDATE is what keeps concurrent redemptions from going below zero.
    Returns the new balance, or None if no row qualified (not active or not enough)."""
    return await _add_to_balance(connection, member_id, -amount, require_active=True, at_least=amount)


async def add_lot(
    connection: BaseDBAsyncClient, entry: LedgerEntry, amount: int, balance_after: int, expires_on: date
) -> CreditLot | None:
    """The lot of a positive credit of `amount`, already added to the balance (now
    `balance_after`). A credit posted while the balance is negative pays the debt first,
    so only what is above zero is left in the lot (possibly nothing: remaining 0)."""
    if amount <= 0:
        return None
    return await CreditLot.create(
        entry_id=entry.id, member_id=entry.member_id, expires_on=expires_on,
        remaining=lot_remaining(amount, balance_after), using_db=connection,
    )


def lot_rows(member_id: int, credits: Sequence[tuple[Any, int, int]], expires_on: date) -> list[tuple]:
    """lot_insert()'s rows for several (entry id, amount, balance after it) credits of one
    member expiring together (a credit of 0 has no lot): one INSERT for all of them. The
    entry id may be what stands for it in a statement (the PostgreSQL flight's CTE name)."""
    return [
        (entry_id, member_id, expires_on, lot_remaining(amount, balance_after), 0)
        for entry_id, amount, balance_after in credits if amount > 0
    ]


async def take_from_lots(
    connection: BaseDBAsyncClient, member_id: int, amount: int, *, own_entry_ids: Sequence[int] = ()
) -> list[tuple[int, int]]:
    """Consume `amount` of a debit already taken off the balance from the member's lots:
    first the lots of `own_entry_ids` (a reversed credit takes from its own lot first),
    then earliest-expiring first. Whatever the lots do not cover is the negative balance.
    Returns (lot id, taken) pairs."""
    if amount <= 0:
        return []
    lots = await (
        CreditLot.filter(member_id=member_id, remaining__gt=0)
        .using_db(connection)
        .order_by("expires_on", "id")
        .values_list("id", "entry_id", "expires_on", "remaining")
    )
    taken: list[tuple[int, int]] = []
    left = amount
    others: list[tuple[int, date, int]] = []
    for lot_id, entry_id, expires_on, remaining in lots:
        if entry_id in own_entry_ids and left > 0:
            take = min(remaining, left)
            taken.append((lot_id, take))
            left -= take
            remaining -= take
        if remaining > 0:
            others.append((lot_id, expires_on, remaining))
    covered = min(left, sum(remaining for _, _, remaining in others))
    taken.extend(consume_fifo(others, covered))
    for lot_id, take in taken:
        await CreditLot.filter(id=lot_id).using_db(connection).update(remaining=F("remaining") - take)
    return taken
