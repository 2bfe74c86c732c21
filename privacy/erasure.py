"""Erasure of a member's personal data (an admin's memberErase, `loyalty member erase`).

The member row stays, anonymised (members.privacy.erase_personal_columns: names the
placeholder ERASED, birth date, phone, email and the address but its country gone,
consents withdrawn), CLOSED and never to be re-activated, so that:

- the card number stays reserved forever (a unique column of a row never deleted: no
  enrolment or import can be given it again);
- the ledger, credit lots, balance, tier and tier events are untouched, so
  `loyalty ledger reconcile` stays clean and every statistic keeps its counts (tier
  events carry the card number, tiers, offices and dates, never a name);
- the member can no longer sign in or use a token: the password and every refresh
  token are deleted, and member tokens of an erased member are refused.

Personal data copied elsewhere goes too: the free text written about the member (care
call notes and needs, feedback subjects, texts, resolutions and history notes) is
replaced, birthday greeting marks (they tell the birthday) are deleted, and the
idempotency records of the requests that carried the member's data (memberEnroll,
feedbackSubmit, careCallLog) lose their fingerprint (members.idempotency: a replay
returns the erased result). Staff's audit reasons (status changes, region moves, tier
overrides, goodwill) and ledger descriptions are kept: they are the programme's
records of its own decisions and postings (docs/PRIVACY.md).

All of it in one transaction, with an audit row (who, when, why: MemberErasure).
Erasing again returns the first erasure and writes nothing.

Concurrent writes of free text about the member are exact: the transaction's first
statement is the UPDATE of the member row, and feedbackSubmit and feedbackUpdate hold
that row first in theirs (members.privacy.hold_member; careCallLog reads it FOR UPDATE):
a write that held it first is committed before the scrub runs and is scrubbed; one that
comes second waits for the erasure and finds the member erased (feedbackSubmit and
careCallLog are refused; feedbackUpdate moves the status but keeps no resolution text
or note).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from tortoise.transactions import in_transaction

from care.greetings import GreetingKind
from care.models import CareCall, Feedback, FeedbackChange, GreetingSent
from members.access import Caller, Role, require_role
from members.enums import MemberStatus
from members.idempotency import ERASED_FINGERPRINT
from members.models import IdempotencyRecord, Member, MemberCredential, MemberErasure, MemberStatusChange, RefreshToken
from members.privacy import ERASED_TEXT, erase_personal_columns
from members.services import audit_reason, visible_member

__all__ = ["ERASED_TEXT", "Erased", "erase_member"]

# Requests whose content carried the member's personal data, by the table of their result.
_REQUESTS_WITH_PERSONAL_DATA = (("memberEnroll", None), ("feedbackSubmit", Feedback), ("careCallLog", CareCall))


@dataclass(frozen=True)
class Erased:
    member: Member
    erasure: MemberErasure
    erased_now: bool  # False: the member was erased before (nothing written)


async def erase_member(caller: Caller, member_id: str | int, reason: str, *, now: datetime) -> Erased:
    """Erase a member's personal data (see the module docstring). Admin only; INVALID
    for a missing or long reason, NOT_FOUND for an unknown member."""
    require_role(caller, (Role.ADMIN,), "only an admin erases a member's personal data")
    reason = audit_reason(reason)
    member = await visible_member(caller, member_id, "input", "memberId")
    now = now.astimezone(timezone.utc)
    erased_now = False
    if member.erased_at is None:
        async with in_transaction() as connection:
            if await erase_personal_columns(connection, member.id, now):  # False: a concurrent erasure won
                erased_now = True
                if member.status is not MemberStatus.CLOSED:
                    await Member.filter(id=member.id).using_db(connection).update(status=MemberStatus.CLOSED)
                    await MemberStatusChange.create(
                        member_id=member.id, from_status=member.status, to_status=MemberStatus.CLOSED,
                        reason="erasure", actor=caller.actor, using_db=connection,
                    )
                await MemberCredential.filter(member_id=member.id).using_db(connection).delete()
                await RefreshToken.filter(member_id=member.id).using_db(connection).delete()
                await _erase_copies(connection, member.id)
                await MemberErasure.create(
                    member_id=member.id, erased_at=now, actor=caller.actor, reason=reason, using_db=connection
                )
    return Erased(await Member.get(id=member.id), await MemberErasure.get(member_id=member.id), erased_now)


async def _erase_copies(connection, member_id: int) -> None:
    """The member's personal data where it was copied to (module docstring)."""
    calls = CareCall.filter(member_id=member_id).using_db(connection)
    await calls.filter(notes__isnull=False).update(notes=None)
    await calls.update(needs=[])
    feedback = Feedback.filter(member_id=member_id).using_db(connection)
    await feedback.update(subject=ERASED_TEXT, text=ERASED_TEXT)
    await feedback.filter(resolution__isnull=False).update(resolution=ERASED_TEXT)
    feedback_ids = await feedback.values_list("id", flat=True)
    if feedback_ids:
        await FeedbackChange.filter(feedback_id__in=feedback_ids, note__isnull=False).using_db(connection).update(note=None)
    await GreetingSent.filter(member_id=member_id, kind=GreetingKind.BIRTHDAY.value).using_db(connection).delete()
    for operation, model in _REQUESTS_WITH_PERSONAL_DATA:
        if model is None:
            results = [member_id]
        else:
            results = await model.filter(member_id=member_id).using_db(connection).values_list("id", flat=True)
        if results:
            await IdempotencyRecord.filter(operation=operation, result_id__in=results).using_db(connection).update(
                fingerprint=ERASED_FINGERPRINT
            )
