"""The tier event log: every tier change is written here, in the transaction of its cause."""

from __future__ import annotations

from datetime import date, datetime, timezone

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.models import LedgerEntry, TierChangeReason, TierEvent
from members.enums import Tier
from members.models import Branch, Member, Office
from members.regions import move_tier_counts

# Any constant: the advisory lock that serialises event writers on PostgreSQL.
_EVENT_LOCK_KEY = 7_203_114


async def _serialise_writers(connection: BaseDBAsyncClient) -> None:
    """Make positions commit in order on PostgreSQL.

    A sequence hands out ids at insert time, so two transactions could commit
    positions 8 then 7 and a reader between the commits would pass 7 by. Holding a
    transaction-scoped advisory lock from the insert to the commit makes the commit
    order the position order. SQLite already has a single writer.
    """
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [_EVENT_LOCK_KEY])


async def record_tier_change(
    connection: BaseDBAsyncClient,
    member: Member,
    *,
    to_tier: Tier,
    reason: TierChangeReason,
    since: date,
    valid_until: date | None,
    actor: str,
    cause: LedgerEntry | None = None,
    note: str | None = None,
    effective_at: datetime | None = None,
    recorded_on: date | None = None,
) -> TierEvent:
    """Set the member's tier and append the event, both on `connection` (the caller's
    transaction). `member` is updated in memory to match. ``recorded_on``: the
    programme's day of the change (the services' ``today``; default the UTC day of
    effective_at), kept as the member's tier_recorded_on when the tier changes."""
    office = await Office.get(id=member.office_id).using_db(connection)
    branch = await Branch.get(id=member.branch_id).using_db(connection)
    from_tier = member.tier
    effective_at = effective_at or datetime.now(timezone.utc)
    columns = {"tier": to_tier, "tier_since": since, "tier_valid_until": valid_until}
    if to_tier != from_tier:  # a retention keeps the tier, and the day it was reached
        columns["tier_recorded_on"] = recorded_on or effective_at.astimezone(timezone.utc).date()
    await Member.filter(id=member.id).using_db(connection).update(**columns)
    for column, value in columns.items():
        setattr(member, column, value)
    await move_tier_counts(connection, [(office.id, from_tier, -1), (office.id, to_tier, 1)])
    await _serialise_writers(connection)
    return await TierEvent.create(
        member_id=member.id,
        card_number=member.card_number,
        from_tier=from_tier,
        to_tier=to_tier,
        reason=reason,
        effective_at=effective_at,
        since=since,
        valid_until=valid_until,
        office_id=office.id,
        branch_id=branch.id,
        office_code=office.code,
        branch_code=branch.code,
        cause_id=cause.id if cause else None,
        actor=actor,
        note=note,
        using_db=connection,
    )


def default_connection() -> BaseDBAsyncClient:
    return connections.get("default")
