"""Member feedback: complaints, suggestions, praise and inquiries, routed to the member's
office, with a status history.

- submit: a member for themselves, or office/branch staff and admin on behalf of a
  member in their scope. The item carries the member's current office and branch (its
  scope, members.access.restrict_by_member_region); a COMPLAINT must be answered by
  respond_by = submitted_at + complaint_response_hours. History starts with OPEN.
- update: staff in scope or admin move the status along TRANSITIONS (RESOLVED needs a
  resolution; going back to IN_PROGRESS clears it), each change with a history row.
  Of an erased member (privacy.erasure) the status moves but no text is kept.
- Both hold the member's row first in their transaction (members.privacy.hold_member),
  so that an erasure racing them leaves none of their text.
- overdue: a COMPLAINT still OPEN or IN_PROGRESS whose respond_by has passed (now >
  respond_by; exactly at respond_by it is not overdue yet). ``is_overdue`` decides it
  for one item; care.stats.overdue_complaint is the same rule in SQL, used by the list
  filter and the region statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

from tortoise.query_utils import Prefetch
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from care.models import Feedback, FeedbackChange, FeedbackChannel, FeedbackKind, FeedbackStatus
from members.paging import newest_first
from care.satisfaction import add_score, checked_score
from care.stats import OPEN_STATUSES, overdue_complaint
from loyalty.rules import Rules
from members.access import STAFF_ROLES, Caller, Role, in_region, require_role, restrict_by_member_region
from members.errors import DomainError, invalid, not_found
from members.ids import BIGINT_IDS, database_id
from members.idempotency import run_once
from members.paging import Page
from members.privacy import ERASED_TEXT, hold_member
from members.services import refuse_erased, visible_member

__all__ = [
    "FeedbackFilter",
    "TRANSITIONS",
    "feedback_item",
    "is_overdue",
    "list_feedback",
    "submit_feedback",
    "update_feedback",
]

MAX_SUBJECT = 200
MAX_TEXT = 5000
MAX_NOTE = 2000
FEEDBACK_ORDER = "feedback"
DEFAULT_PAGE = 50  # Query.feedback (first = 50)

S = FeedbackStatus
TRANSITIONS: dict[FeedbackStatus, frozenset[FeedbackStatus]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.IN_PROGRESS, S.CLOSED}),
    S.CLOSED: frozenset(),
}


def is_overdue(feedback: Feedback, now: datetime) -> bool:
    """A complaint still waiting for an answer after its respond_by (strictly later)."""
    return (
        feedback.kind is FeedbackKind.COMPLAINT
        and feedback.status in OPEN_STATUSES
        and feedback.respond_by is not None
        and now > feedback.respond_by
    )


@dataclass(frozen=True)
class FeedbackFilter:
    statuses: tuple[FeedbackStatus, ...] | None = None
    kinds: tuple[FeedbackKind, ...] | None = None
    office_code: str | None = None
    branch_code: str | None = None
    overdue: bool | None = None
    member_id: str | None = None


def _check_staff(caller: Caller) -> None:
    require_role(caller, STAFF_ROLES, "feedback is handled by office, branch and admin staff")


def _text(value: str | None, limit: int, name: str, *, required: bool = True) -> str | None:
    value = (value or "").strip()
    if not value and required:
        raise invalid(f"{name} is required", "input", name)
    if len(value) > limit:
        raise invalid(f"{name} is longer than {limit} characters", "input", name)
    return value or None


def _with_history(query: QuerySet[Feedback]) -> QuerySet[Feedback]:
    return query.prefetch_related(Prefetch("changes", queryset=FeedbackChange.all().order_by("id")))


async def _load(feedback_id: int) -> Feedback:
    return await _with_history(Feedback.filter(id=feedback_id)).get()


async def submit_feedback(
    caller: Caller,
    *,
    member_id: str | None,
    kind: FeedbackKind,
    channel: FeedbackChannel,
    subject: str,
    text: str,
    idempotency_key: str | None = None,
    rules: Rules,
    now: datetime,
) -> Feedback:
    """Record feedback from a member (members: their own; staff: a member in scope),
    routed to the member's current office. Returned with its history loaded."""
    require_role(caller, STAFF_ROLES | {Role.MEMBER}, "feedback is submitted by members and by office, branch and admin staff")
    if caller.role is Role.MEMBER:
        member_id = str(caller.member_id) if member_id is None else member_id
    elif member_id is None:
        raise invalid("memberId is required when staff submit feedback", "input", "memberId")
    kind, channel = FeedbackKind(kind), FeedbackChannel(channel)
    subject = " ".join((subject or "").split())
    if not subject:
        raise invalid("subject is required", "input", "subject")
    if len(subject) > MAX_SUBJECT:
        raise invalid(f"subject is longer than {MAX_SUBJECT} characters", "input", "subject")
    text = _text(text, MAX_TEXT, "text")
    now = now.astimezone(timezone.utc)
    content = {"memberId": member_id, "kind": kind.value, "channel": channel.value, "subject": subject, "text": text}

    async def work(connection) -> tuple[Feedback, int]:
        # First: an erasure either waits for this item (and scrubs it) or has committed
        # (and is seen below). members.privacy.hold_member.
        if (pk := database_id(member_id)) is not None:
            await hold_member(connection, pk)
        member = await visible_member(caller, member_id, "input", "memberId")
        refuse_erased(member, "input", "memberId")
        respond_by = now + timedelta(hours=rules.care.complaint_response_hours) if kind is FeedbackKind.COMPLAINT else None
        item = await Feedback.create(
            member_id=member.id, office_id=member.office_id, branch_id=member.branch_id, kind=kind, channel=channel,
            subject=subject, text=text, status=FeedbackStatus.OPEN, submitted_at=now, respond_by=respond_by,
            updated_at=now, submitted_by=caller.actor, using_db=connection,
        )
        await FeedbackChange.create(
            feedback_id=item.id, from_status=None, to_status=FeedbackStatus.OPEN, actor=caller.actor,
            changed_at=now, using_db=connection,
        )
        return item, item.id

    item = await run_once(caller=caller.key, key=idempotency_key, operation="feedbackSubmit", content=content, work=work, load=_load)
    return await _load(item.id)


def _scoped(caller: Caller) -> QuerySet[Feedback]:
    return restrict_by_member_region(Feedback.all(), caller)


async def update_feedback(
    caller: Caller,
    feedback_id: str,
    status: FeedbackStatus,
    *,
    note: str | None = None,
    resolution: str | None = None,
    satisfaction: int | None = None,
    now: datetime,
    zone: tzinfo = timezone.utc,
) -> Feedback:
    """Move a feedback item (in the caller's scope) to `status` by TRANSITIONS, with a
    history row. RESOLVED requires a resolution; a resolution with another status is
    INVALID; back to IN_PROGRESS clears the resolution, CLOSED keeps it. satisfaction
    (1 to 5, the member's with the resolution) only with RESOLVED, counted on today in
    the item's office (care.satisfaction; ``zone`` is the programme's time zone): the
    statistics count every score told, so an item resolved twice with a score each time
    counts twice, on the days they were told; the item keeps the latest."""
    _check_staff(caller)
    now = now.astimezone(timezone.utc)
    status = FeedbackStatus(status)
    note = _text(note, MAX_NOTE, "note", required=False)
    if status is FeedbackStatus.RESOLVED:
        resolution = _text(resolution, MAX_TEXT, "resolution")
    elif resolution is not None:
        raise invalid("resolution is given only with status RESOLVED", "input", "resolution")
    satisfaction = checked_score(satisfaction, "input", "satisfaction")
    if satisfaction is not None and status is not FeedbackStatus.RESOLVED:
        raise invalid("satisfaction is given only with status RESOLVED", "input", "satisfaction")
    pk = database_id(feedback_id, BIGINT_IDS)
    item = await _scoped(caller).get_or_none(id=pk) if pk is not None else None
    if item is None:
        raise not_found("no such feedback", "input", "id")
    if status not in TRANSITIONS[item.status]:
        raise DomainError(
            "INVALID_TRANSITION", f"feedback {item.status.value} cannot become {status.value}", ("input", "status")
        )
    values: dict = {"status": status, "updated_at": now}
    if status is FeedbackStatus.RESOLVED:
        values["resolution"] = resolution
        values["satisfaction"] = satisfaction
    elif status is FeedbackStatus.IN_PROGRESS:
        values["resolution"] = None
        values["satisfaction"] = None  # the score was the resolution's
    async with in_transaction() as connection:
        # First the member's row (members.privacy.hold_member): an erasure committed
        # before it leaves no text to write about the member (the status still moves);
        # one after it scrubs what is written here.
        if await hold_member(connection, item.member_id):
            if values.get("resolution") is not None:
                values["resolution"] = ERASED_TEXT
            note = None
        # Conditional on the status read: of two concurrent changes, the second finds
        # the status moved and is refused instead of writing over the first.
        changed = await Feedback.filter(id=item.id, status=item.status).using_db(connection).update(**values)
        if not changed:
            raise DomainError("INVALID_TRANSITION", "the feedback changed meanwhile; read it again", ("input", "status"))
        await FeedbackChange.create(
            feedback_id=item.id, from_status=item.status, to_status=status, note=note, actor=caller.actor,
            changed_at=now, using_db=connection,
        )
        if satisfaction is not None:
            await add_score(connection, item.office_id, now.astimezone(zone).date(), satisfaction)
    return await _load(item.id)


async def feedback_item(caller: Caller, feedback_id: str) -> Feedback | None:
    """One item with its history; None when unknown or outside the caller's scope."""
    _check_staff(caller)
    pk = database_id(feedback_id, BIGINT_IDS)
    if pk is None:
        return None
    return await _with_history(_scoped(caller).filter(id=pk)).first()


async def list_feedback(
    caller: Caller, feedback_filter: FeedbackFilter | None, *, now: datetime, first: int | None = DEFAULT_PAGE,
    after: str | None = None,
) -> Page[Feedback]:
    """The caller's feedback, newest first (submittedAt, then id), filtered; overdue as
    is_overdue at `now`, in SQL. ForbiddenError for a region outside the scope."""
    _check_staff(caller)
    now = now.astimezone(timezone.utc)  # SQLite compares a filter's instant with stored UTC text as text
    f = feedback_filter or FeedbackFilter()
    query = _scoped(caller)
    query = await in_region(query, caller, f.office_code, f.branch_code)
    if f.statuses is not None:
        query = query.filter(status__in=[FeedbackStatus(s) for s in f.statuses])
    if f.kinds is not None:
        query = query.filter(kind__in=[FeedbackKind(k) for k in f.kinds])
    if f.member_id is not None:
        pk = database_id(f.member_id)
        query = query.filter(member_id__in=[pk] if pk is not None else [])
    if f.overdue is not None:
        overdue = overdue_complaint(now)
        query = query.filter(overdue if f.overdue else ~overdue)
    return await newest_first(_with_history(query), "submitted_at", FEEDBACK_ORDER, first, after, DEFAULT_PAGE)
