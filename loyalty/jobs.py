"""Operator jobs on miles: expiry, reconciliation, and the expiring-soon read.

Expiry (RULES.md "Miles", "Dates"): a credit is good through its expiry date, so a run
``as_of D`` expires what is left of every lot whose expires_on < D. Per member and run
there is ONE EXPIRY entry: its redeemable miles are minus the sum of what was left of
the member's expired lots, and its activity date is the LATEST expiry date among them
(the last day those miles were good), so a late run dates the entry as a timely run
would have. The lots go to 0 and the balance goes down by the same amount, in one
short transaction per member; a second run finds no lot with anything left. Expiry
applies whatever the member's status (it is not a posting the member asked for).

Invariant the reconcile job proves for every member:
    member.redeemable_miles == SUM(ledger redeemable_miles)
    SUM(lot.remaining)      == max(member.redeemable_miles, 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from tortoise.expressions import F
from tortoise.functions import Coalesce, Count, Sum
from tortoise.transactions import in_transaction

from loyalty import book, lots
from loyalty.ledger import entry_values
from loyalty.book import SYSTEM_SOURCE
from loyalty.models import CreditLot, LedgerEntry
from loyalty.rules import Rules
from members.models import Member
from members.paging import after_key

__all__ = [
    "Difference",
    "ExpirySummary",
    "SYSTEM_SOURCE",
    "expire_miles",
    "miles_expiring_soon",
    "reconcile",
]



# ---- expiry ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpirySummary:
    members: int  # members who had miles expire
    entries: int  # EXPIRY entries posted (one per member and run)
    miles: int  # miles expired in total (positive)
    # The first few members expired, (card number, miles), in the order expired: what a
    # dry run shows.
    sample: tuple[tuple[str, int], ...] = field(default=(), compare=False)


def _expired_lots(as_of: date):
    """Open lots (remaining > 0) whose last day is before `as_of`: a range of the
    partial index credit_lot_open_expiry (expires_on, member_id, remaining) WHERE remaining > 0,
    which holds only open lots, so the job reads what is due and not every lot."""
    return CreditLot.filter(remaining__gt=0, expires_on__lt=as_of)


async def _count_members_due(as_of: date) -> int:
    """Members with expired open lots (for progress), counted from the partial index.
    PostgreSQL's planner cannot know that open lots are mostly the ones not yet expired
    (it multiplies the two conditions' selectivities: a quarter of all lots instead of
    the few due) and would scan the whole table, so sequential scans are priced out for
    this one statement."""
    async with in_transaction() as connection:
        if connection.capabilities.dialect == "postgres":
            await connection.execute_script("SET LOCAL enable_seqscan = off")
        row = await (
            _expired_lots(as_of).using_db(connection).annotate(n=Count("member_id", distinct=True)).first().values("n")
        )
    return int((row or {}).get("n") or 0)


async def _members_due(as_of: date, batch_size: int):
    """Ids of the members with expired open lots, in batches read by key (expires_on,
    member_id) in the index's order: each batch reads at most batch_size index entries
    after the last one, never the whole candidate set, and a member is yielded once
    (its expired lots are all closed when it is expired, so later batches do not
    meet it again)."""
    last: tuple[date, int] | None = None
    while True:
        query = _expired_lots(as_of)
        if last is not None:
            query = query.filter(after_key(("expires_on", "member_id"), last))
        keys = await query.order_by("expires_on", "member_id").limit(batch_size).values_list("expires_on", "member_id")
        if not keys:
            return
        yield list(dict.fromkeys(member_id for _, member_id in keys))
        last = keys[-1]


async def _expire_member(member_id: int, as_of: date, *, dry_run: bool = False) -> int:
    """Expire what is left of the member's lots with expires_on < as_of; the miles
    expired (0 when nothing was left any more). A dry run only reads them."""
    async with in_transaction() as connection:
        if not dry_run:
            # First statement: a write on the member's row (adds 0), so that postings of the
            # member wait for this transaction and its lots are read only after the lock.
            await lots.change_balance(connection, member_id, 0)
        expired = await (
            _expired_lots(as_of).filter(member_id=member_id).using_db(connection)
            .values_list("id", "expires_on", "remaining")
        )
        entry = book.expiry_entry([(expires_on, remaining) for _, expires_on, remaining in expired])
        if entry is None or dry_run:
            return max(sum(remaining for _, _, remaining in expired), 0)
        amount = -entry.redeemable_miles
        await lots.change_balance(connection, member_id, -amount)
        # What is left moves to `expired`: the lot's breakage (loyalty.liability).
        await CreditLot.filter(id__in=[lot_id for lot_id, _, _ in expired]).using_db(connection).update(
            expired=F("expired") + F("remaining"), remaining=0)
        await LedgerEntry.create(**entry_values(member_id, entry), using_db=connection)
    return amount


async def expire_miles(
    as_of: date,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    sample_size: int = 5,
) -> ExpirySummary:
    """Post EXPIRY entries for what is left of credits whose expiry date is before
    ``as_of``. Members are found from the open lots' partial index, in batches by key
    (_members_due); each member is one transaction. Idempotent. ``dry_run``: the same
    counts, nothing written."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = await _count_members_due(as_of)
    members = miles = done = 0
    sample: list[tuple[int, int]] = []
    seen: set[int] = set()  # a dry run closes no lots: a member may come in a later batch again
    if progress:
        progress(0, total)
    async for batch in _members_due(as_of, batch_size):
        for member_id in batch:
            if dry_run:
                if member_id in seen:
                    continue
                seen.add(member_id)
            amount = await _expire_member(member_id, as_of, dry_run=dry_run)
            done += 1
            if amount:
                members += 1
                miles += amount
                if len(sample) < sample_size:
                    sample.append((member_id, amount))
        if progress:
            progress(done, max(total, done))
    cards = dict(await Member.filter(id__in=[m for m, _ in sample]).values_list("id", "card_number")) if sample else {}
    return ExpirySummary(members=members, entries=members, miles=miles,
                         sample=tuple((cards.get(m, str(m)), amount) for m, amount in sample))


# ---- reconcile ---------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    member_id: int
    card_number: str
    balance: int
    ledger_sum: int
    lots_sum: int


async def _sums(model, column: str, low: int, high: int) -> dict[int, int]:
    """SUM(column) per member for member ids in [low, high], one grouped query."""
    rows = await (
        model.filter(member_id__gte=low, member_id__lte=high)
        .annotate(total=Coalesce(Sum(column), 0)).group_by("member_id").values("member_id", "total")
    )
    return {row["member_id"]: int(row["total"] or 0) for row in rows}


async def reconcile(
    progress: Callable[[int, int], None] | None = None, batch_size: int = 2000
) -> tuple[int, list[Difference]]:
    """Check every member: balance == SUM(ledger redeemable) and SUM(lot remaining) ==
    max(balance, 0). Members are read in id-ordered batches; each batch costs three
    queries (the members, and one grouped aggregate each of the ledger and the lots
    over the batch's id range). Returns (members checked, differences)."""
    total = await Member.all().count()
    checked = 0
    differences: list[Difference] = []
    last_id = 0
    if progress:
        progress(0, total)
    while True:
        batch = await (
            Member.filter(id__gt=last_id).order_by("id").limit(batch_size)
            .values_list("id", "card_number", "redeemable_miles")
        )
        if not batch:
            break
        low, high = batch[0][0], batch[-1][0]
        ledger = await _sums(LedgerEntry, "redeemable_miles", low, high)
        lot_sums = await _sums(CreditLot, "remaining", low, high)
        for member_id, card_number, balance in batch:
            ledger_sum = ledger.get(member_id, 0)
            lots_sum = lot_sums.get(member_id, 0)
            if balance != ledger_sum or lots_sum != max(balance, 0):
                differences.append(Difference(member_id, card_number, balance, ledger_sum, lots_sum))
        checked += len(batch)
        last_id = high
        if progress:
            progress(checked, max(total, checked))
    return checked, differences


# ---- expiring soon -----------------------------------------------------------------


async def miles_expiring_soon(member_id: int, *, rules: Rules, today: date) -> int:
    """What is left of the member's credits expiring within rules.expiring_soon_days
    (today <= expires_on <= today + days), never more than the balance."""
    until = today + timedelta(days=rules.expiring_soon_days)
    row = await (
        CreditLot.filter(member_id=member_id, remaining__gt=0, expires_on__gte=today, expires_on__lte=until)
        .annotate(total=Coalesce(Sum("remaining"), 0)).first().values("total")
    )
    soon = int((row or {}).get("total") or 0)
    if soon == 0:
        return 0
    balance = await Member.filter(id=member_id).first().values_list("redeemable_miles", flat=True)
    return max(0, min(soon, int(balance or 0)))
