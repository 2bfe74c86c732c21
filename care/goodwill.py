"""Goodwill miles: service recovery by the regional offices.

When an office resolves a complaint it may compensate the member, the CRM practice's
first step to win a customer back. Office and branch staff credit a member in their
scope, admin any member: an ADJUSTMENT ledger entry of redeemable miles (no qualifying
miles: goodwill never moves a tier), a credit lot expiring like any credit of the day,
and an audit record (care.models.GoodwillCredit: who, as which role, why, for which
feedback item), all in ONE transaction. One credit may give at most the rules file's
``care.goodwill_max_miles`` of the caller's role (OFFICE 2,000, BRANCH 10,000, ADMIN
50,000 by default); more is LIMIT_EXCEEDED. A retry with the same idempotency key and
content returns the first credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from tortoise.backends.base.client import BaseDBAsyncClient

from care.models import Feedback, GoodwillCredit
from loyalty import book
from loyalty import calendar as cal
from loyalty import lots
from loyalty.book import GOODWILL_SOURCE
from loyalty.ledger import entry_values
from loyalty.models import LedgerEntry
from loyalty.rules import Rules
from members.access import STAFF_ROLES, Caller, can_see_member, require_role
from members.errors import DomainError, invalid, not_found
from members.idempotency import run_once
from members.ids import BIGINT_IDS, database_id
from members.models import Member
from members.services import visible_member

__all__ = ["GOODWILL_SOURCE", "GoodwillResult", "MAX_REASON", "credit_goodwill"]

MAX_REASON = 300


@dataclass(frozen=True)
class GoodwillResult:
    entry: LedgerEntry
    member: Member
    credit: GoodwillCredit


async def credit_goodwill(
    caller: Caller,
    member_id: str,
    miles: int,
    reason: str,
    *,
    feedback_id: str | None = None,
    idempotency_key: str | None = None,
    rules: Rules,
    today: date,
    now: datetime,
) -> GoodwillResult:
    """Credit goodwill miles to an ACTIVE member in the caller's scope (office, branch or
    admin staff), optionally for one of the member's feedback items. INVALID for miles
    that are not a positive whole number or an empty reason; LIMIT_EXCEEDED over the
    role's cap; NOT_FOUND for a member or feedback item the caller may not see (or a
    feedback item of another member); MEMBER_NOT_ACTIVE for a suspended or closed
    member."""
    require_role(caller, STAFF_ROLES, "goodwill miles are given by office, branch and admin staff")
    if isinstance(miles, bool) or not isinstance(miles, int) or miles < 1:
        raise invalid("miles must be a positive whole number", "input", "miles")
    cap = rules.care.goodwill_max_miles[caller.role.name]
    if miles > cap:
        raise DomainError(
            "LIMIT_EXCEEDED", f"one goodwill credit by {caller.role.name.lower()} staff may give at most {cap:,} miles",
            ("input", "miles"),
        )
    text = " ".join((reason or "").split())
    if not 1 <= len(text) <= MAX_REASON:
        raise invalid(f"reason must be 1 to {MAX_REASON} characters", "input", "reason")
    member = await visible_member(caller, member_id, "input", "memberId")
    feedback = None
    if feedback_id is not None:
        pk = database_id(feedback_id, BIGINT_IDS)
        feedback = await Feedback.get_or_none(id=pk) if pk is not None else None
        if feedback is None or feedback.member_id != member.id:
            raise not_found("no such feedback item of this member", "input", "feedbackId")
    now = now.astimezone(timezone.utc)

    async def work(connection: BaseDBAsyncClient) -> tuple[GoodwillResult, int]:
        # First statement: the credit on the member's row (ACTIVE only; locks the row).
        balance = await lots.change_balance(connection, member.id, miles, require_active=True)
        if balance is None:
            current = await Member.get(id=member.id).using_db(connection)
            raise DomainError("MEMBER_NOT_ACTIVE", f"the member is {current.status.value}", ("input", "memberId"))
        entry = await LedgerEntry.create(
            **entry_values(member.id, book.goodwill_entry(miles, today, text)), using_db=connection)
        await lots.add_lot(connection, entry, miles, balance, cal.credit_expiry(today, rules.credit_validity_months))
        credit = await GoodwillCredit.create(
            entry_id=entry.id, member_id=member.id, feedback_id=feedback.id if feedback else None,
            office_id=member.office_id, branch_id=member.branch_id, miles=miles, reason=text,
            role=caller.role.name, actor=caller.actor, credited_at=now, using_db=connection,
        )
        after = await Member.get(id=member.id).using_db(connection)
        return GoodwillResult(entry, after, credit), credit.id

    async def load(credit_id: int) -> GoodwillResult:
        credit = await GoodwillCredit.get(id=credit_id).prefetch_related("entry", "member")
        if not can_see_member(caller, credit.member):  # moved out of the caller's scope since
            raise not_found("no such member", "input", "memberId")
        return GoodwillResult(credit.entry, credit.member, credit)

    content = {"memberId": member.id, "miles": miles, "reason": text, "feedbackId": feedback.id if feedback else None}
    return await run_once(
        caller=caller.key, key=idempotency_key, operation="goodwillCredit", content=content, work=work, load=load
    )
