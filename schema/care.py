"""VIP care: care calls (log, worklist, a member's calls) and member feedback."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from care import calls as call_services
from care import feedback as feedback_services
from care import goodwill as goodwill_services
from care.calls import CareCallReason as DomainReason
from care.models import CallOutcome as DomainOutcome
from care.models import CareCall as CallRow
from care.models import Feedback as FeedbackRow
from care.models import FeedbackChannel as DomainChannel
from care.models import FeedbackKind as DomainKind
from care.models import FeedbackStatus as DomainStatus
from members.paging import newest_first_cursor
from members import models
from members.access import Role
from members.paging import Page, page_size
from schema.common import PageInfo, total_count_field
from schema.context import Info
from schema.errors import UserError, mutation
from schema.insights import _described
from schema.loyalty import LedgerEntry
from schema.members import Member, member_view
from schema.permissions import STAFF, allow
from schema.regions import Office

CallOutcome = _described(
    DomainOutcome, "CallOutcome", "How a care call went.",
    {
        "REACHED": "The member was reached and talked (a contact).",
        "NO_ANSWER": "Nobody answered.",
        "DECLINED": "The member was reached but did not want to talk (still a contact).",
        "WRONG_NUMBER": "The number did not reach the member.",
    },
)
CareCallReason = _described(
    DomainReason, "CareCallReason", "Why a VIP is due a call, most urgent first.",
    {
        "FOLLOW_UP_DUE": "The follow-up date a call asked for has come.",
        "AT_RISK": "At risk of losing the tier at validUntil, and not reached in the last upgrade_call_days days.",
        "JUST_UPGRADED": (
            "The tier was recorded within upgrade_call_days (whatever the date of the flight that earned it) "
            "and the member not reached since: a welcome call."
        ),
        "DECLINING": (
            "The lifecycle stage is DECLINING (recent activity below decline_percent of the period before) and the "
            "member has not been reached since the stage began: a churn warning."
        ),
        "DORMANT": (
            "The lifecycle stage is DORMANT (no earning activity in either period) and the member has "
            "not been reached since the stage began: a churn warning."
        ),
        "NEVER_CALLED": "Never reached by a care call.",
        "INTERVAL_PASSED": "The last contact is the tier's call interval ago or longer (PLATINUM 30, GOLD 60, SILVER 90 days).",
    },
)
FeedbackKind = _described(
    DomainKind, "FeedbackKind", "What a feedback item is.",
    {
        "COMPLAINT": "A complaint: to be answered within complaint_response_hours.",
        "SUGGESTION": "A suggestion.",
        "PRAISE": "Praise.",
        "INQUIRY": "A question.",
    },
)
FeedbackChannel = _described(
    DomainChannel, "FeedbackChannel", "How the feedback reached the programme.",
    {
        "APP": "The mobile app.",
        "WEB": "The website.",
        "PHONE": "A phone call.",
        "EMAIL": "Email.",
        "COUNTER": "At an office or airport counter.",
        "SOCIAL": "Social media.",
    },
)
FeedbackStatus = _described(
    DomainStatus, "FeedbackStatus",
    "Where a feedback item stands. OPEN -> IN_PROGRESS | RESOLVED | CLOSED; IN_PROGRESS -> RESOLVED | CLOSED; "
    "RESOLVED -> IN_PROGRESS | CLOSED; CLOSED is final.",
    {
        "OPEN": "Submitted, nobody working on it yet.",
        "IN_PROGRESS": "Being handled.",
        "RESOLVED": "Answered, with a resolution.",
        "CLOSED": "Done; no further change.",
    },
)



def _page_info(page: Page) -> PageInfo:
    return PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor)


# ---- care calls ----------------------------------------------------------------------


@strawberry.type(description="A call office staff made to a member (staff notes: members never see calls).")
class CareCall:
    row: strawberry.Private[CallRow]
    member_row: strawberry.Private[models.Member]
    id: strawberry.ID = strawberry.field(description="Opaque call id.")
    called_at: datetime = strawberry.field(description="When the call was made.")
    outcome: CallOutcome = strawberry.field(description="How the call went.")
    notes: str | None = strawberry.field(description="Free notes (up to 2,000 characters).")
    needs: list[str] = strawberry.field(description="Needs the member named, e.g. \"window seat\" (up to 20).")
    follow_up_on: date | None = strawberry.field(description="The day the member should be called again, if the call asked for one.")
    actor: str = strawberry.field(description="Who logged the call, e.g. office:zhang@PEK01.")
    satisfaction: int | None = strawberry.field(description="The member's satisfaction, 1 (very unhappy) to 5 (very happy), if asked on the call.")

    @classmethod
    def from_row(cls, row: CallRow, member: models.Member) -> CareCall:
        return cls(
            row=row, member_row=member, id=strawberry.ID(str(row.id)), called_at=row.called_at, outcome=row.outcome,
            notes=row.notes, needs=list(row.needs or []), follow_up_on=row.follow_up_on, actor=row.actor,
            satisfaction=row.satisfaction,
        )

    @strawberry.field(description="The member called; null when the member has since moved outside the caller's scope.")
    def member(self, info: Info) -> Member | None:
        return member_view(info, self.member_row)

    @strawberry.field(description="The member's office when the call was made.")
    async def office(self, info: Info) -> Office:
        return Office.from_row(await info.context.reads.office.load(self.row.office_id))


@strawberry.type(description="A care call in a list, with its cursor.")
class CareCallEdge:
    node: CareCall = strawberry.field(description="The call.")
    cursor: str = strawberry.field(description="Opaque keyset cursor; pass as after: to continue.")


@strawberry.type(description="A page of care calls, newest first.")
class CareCallConnection:
    edges: list[CareCallEdge] = strawberry.field(description="The calls of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    page: strawberry.Private[Page]
    total_count: int = total_count_field("Calls of the member the caller may see.")


async def member_care_calls(info: Info, row: models.Member, first: int | None, after: str | None) -> CareCallConnection:
    """Member.careCalls (the member is already resolved in the caller's scope). A first
    page comes from the read layer's loaders (a page of members costs two statements
    for all their calls); a later page (after:) from care.calls for the one member."""
    reads = info.context.reads
    if after is None:
        size = page_size(first, call_services.DEFAULT_CALLS_PAGE)
        rows = await reads.first_care_calls.load((row.id, size))
        page = Page.of(
            rows, size, lambda call: newest_first_cursor(call, "called_at", call_services.CALLS_ORDER),
            lambda: reads.care_call_count.load(row.id),
        )
    else:
        page = await call_services.member_care_calls(info.context.caller, row, first, after)
    return CareCallConnection(
        edges=[CareCallEdge(node=CareCall.from_row(r, row), cursor=c) for r, c in zip(page.items, page.cursors)],
        page_info=_page_info(page), page=page,
    )


@strawberry.type(description="A VIP due a care call, with every reason and the most urgent one.")
class CareCallDue:
    member: Member = strawberry.field(description="The member (ACTIVE, tier SILVER or above, in the caller's scope).")
    reason: CareCallReason = strawberry.field(description="The most urgent reason (first of reasons).")
    reasons: list[CareCallReason] = strawberry.field(description="Every reason that applies, most urgent first.")
    due_since: date = strawberry.field(description="Since when the most urgent reason has applied.")
    last_contact_on: date | None = strawberry.field(description="Day of the last call that reached the member; null if never.")
    follow_up_on: date | None = strawberry.field(description="The follow-up date the last call asked for, if any.")


@strawberry.type(description="A VIP due a call in the worklist, with its cursor.")
class CareCallDueEdge:
    node: CareCallDue = strawberry.field(description="The member due a call.")
    cursor: str = strawberry.field(description="Opaque keyset cursor (the urgency sort key); pass as after: to continue.")


@strawberry.type(description="A page of the care-call worklist, most urgent first.")
class CareCallDueConnection:
    edges: list[CareCallDueEdge] = strawberry.field(description="The members of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    page: strawberry.Private[Page]
    total_count: int = total_count_field("Members due a call in the region asked for.")


def _due(item: call_services.CareCallDue) -> CareCallDue:
    return CareCallDue(
        member=Member.from_row(item.member), reason=item.reason, reasons=[r.reason for r in item.reasons],
        due_since=item.due_since, last_contact_on=item.facts.last_contact_on, follow_up_on=item.facts.follow_up_on,
    )


# ---- feedback ------------------------------------------------------------------------


@strawberry.type(description="One status change of a feedback item.")
class FeedbackChange:
    from_status: FeedbackStatus | None = strawberry.field(description="Status before; null for the submission.")
    to_status: FeedbackStatus = strawberry.field(description="Status after.")
    note: str | None = strawberry.field(description="Why, as the person who changed it wrote.")
    actor: str = strawberry.field(description="Who made the change.")
    changed_at: datetime = strawberry.field(description="When.")


@strawberry.type(description="A complaint, suggestion, praise or inquiry of a member, routed to the member's office.")
class Feedback:
    row: strawberry.Private[FeedbackRow]
    id: strawberry.ID = strawberry.field(description="Opaque feedback id.")
    kind: FeedbackKind = strawberry.field(description="Complaint, suggestion, praise or inquiry.")
    channel: FeedbackChannel = strawberry.field(description="How it reached the programme.")
    subject: str = strawberry.field(description="One line (up to 200 characters).")
    text: str = strawberry.field(description="The member's words (up to 5,000 characters).")
    status: FeedbackStatus = strawberry.field(description="Where it stands.")
    resolution: str | None = strawberry.field(description="The answer given when it was RESOLVED.")
    submitted_at: datetime = strawberry.field(description="When it was submitted.")
    respond_by: datetime | None = strawberry.field(description="COMPLAINT: submittedAt + complaint_response_hours; null for other kinds.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    submitted_by: str = strawberry.field(description="Who submitted it: the member, or the staff on their behalf.")
    satisfaction: int | None = strawberry.field(description="The member's satisfaction with the latest resolution, 1 to 5, if asked.")

    @classmethod
    def from_row(cls, row: FeedbackRow) -> Feedback:
        return cls(
            row=row, id=strawberry.ID(str(row.id)), kind=row.kind, channel=row.channel, subject=row.subject,
            text=row.text, status=row.status, resolution=row.resolution, submitted_at=row.submitted_at,
            respond_by=row.respond_by, updated_at=row.updated_at, submitted_by=row.submitted_by,
            satisfaction=row.satisfaction,
        )

    @strawberry.field(description="A COMPLAINT still OPEN or IN_PROGRESS after respondBy (not yet at respondBy itself).")
    def overdue(self, info: Info) -> bool:
        return feedback_services.is_overdue(self.row, info.context.now())

    @strawberry.field(description="The member; null when the member has since moved outside the caller's scope.")
    async def member(self, info: Info) -> Member | None:
        return member_view(info, await info.context.reads.member.load(self.row.member_id))

    @strawberry.field(description="The office it was routed to (the member's office at submission).")
    async def office(self, info: Info) -> Office:
        return Office.from_row(await info.context.reads.office.load(self.row.office_id))

    @strawberry.field(description="Every status change, oldest first (the first is the submission, to OPEN).")
    def history(self) -> list[FeedbackChange]:
        return [
            FeedbackChange(from_status=c.from_status, to_status=c.to_status, note=c.note, actor=c.actor, changed_at=c.changed_at)
            for c in self.row.changes
        ]


@strawberry.type(description="A feedback item in a list, with its cursor.")
class FeedbackEdge:
    node: Feedback = strawberry.field(description="The feedback item.")
    cursor: str = strawberry.field(description="Opaque keyset cursor; pass as after: to continue.")


@strawberry.type(description="A page of feedback, newest first.")
class FeedbackConnection:
    edges: list[FeedbackEdge] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="Whether there is more, and where to continue.")
    page: strawberry.Private[Page]
    total_count: int = total_count_field("Items matching the filter in the caller's scope.")


@strawberry.input(description="Narrows the feedback list; scope always applies.")
class FeedbackFilter:
    statuses: list[FeedbackStatus] | None = strawberry.field(default=None, description="Only these statuses.")
    kinds: list[FeedbackKind] | None = strawberry.field(default=None, description="Only these kinds.")
    office_code: str | None = strawberry.field(default=None, description="Only this office (must be in scope).")
    branch_code: str | None = strawberry.field(default=None, description="Only this branch (must be in scope).")
    overdue: bool | None = strawberry.field(default=None, description="Only overdue complaints (true), or everything else (false).")
    member_id: strawberry.ID | None = strawberry.field(default=None, description="Only this member's feedback.")


def _feedback_or_none(row: FeedbackRow | None) -> Feedback | None:
    return Feedback.from_row(row) if row is not None else None


@strawberry.type
class CareQuery:
    @strawberry.field(
        description="The care-call worklist: ACTIVE VIPs (SILVER and above) in the caller's scope that are due a call, "
        "optionally one office or branch in it; most urgent first (reason, then tier PLATINUM first, then dueSince oldest "
        "first, then member id).",
        permission_classes=[allow(*STAFF)],
    )
    async def care_calls_due(
        self, info: Info, office_code: str | None = None, branch_code: str | None = None,
        first: int | None = call_services.DEFAULT_DUE_PAGE, after: str | None = None,
    ) -> CareCallDueConnection:
        context = info.context
        page = await call_services.care_calls_due(
            context.caller, context.rules, context.today(), office_code, branch_code, first, after
        )
        return CareCallDueConnection(
            edges=[CareCallDueEdge(node=_due(item), cursor=c) for item, c in zip(page.items, page.cursors)],
            page_info=_page_info(page), page=page,
        )

    @strawberry.field(description="Feedback in the caller's scope, newest first.", permission_classes=[allow(*STAFF)])
    async def feedback(
        self, info: Info, filter: FeedbackFilter | None = None,
        first: int | None = feedback_services.DEFAULT_PAGE, after: str | None = None,
    ) -> FeedbackConnection:
        domain_filter = None
        if filter is not None:
            domain_filter = feedback_services.FeedbackFilter(
                statuses=tuple(filter.statuses) if filter.statuses is not None else None,
                kinds=tuple(filter.kinds) if filter.kinds is not None else None,
                office_code=filter.office_code, branch_code=filter.branch_code, overdue=filter.overdue,
                member_id=filter.member_id,
            )
        page = await feedback_services.list_feedback(
            info.context.caller, domain_filter, now=info.context.now(), first=first, after=after
        )
        return FeedbackConnection(
            edges=[FeedbackEdge(node=Feedback.from_row(r), cursor=c) for r, c in zip(page.items, page.cursors)],
            page_info=_page_info(page), page=page,
        )

    @strawberry.field(description="One feedback item; null when unknown or outside the caller's scope.", permission_classes=[allow(*STAFF)])
    async def feedback_item(self, info: Info, id: strawberry.ID) -> Feedback | None:
        return _feedback_or_none(await feedback_services.feedback_item(info.context.caller, id))


# ---- mutations -------------------------------------------------------------------------


@strawberry.input(description="A care call made to a member.")
class CareCallLogInput:
    member_id: strawberry.ID = strawberry.field(description="The member called (ACTIVE, in the caller's scope).")
    outcome: CallOutcome = strawberry.field(description="How the call went; REACHED and DECLINED count as a contact.")
    notes: str | None = strawberry.field(default=None, description="Free notes, up to 2,000 characters.")
    needs: list[str] | None = strawberry.field(default=None, description="Needs the member named: up to 20, each 1 to 100 characters.")
    follow_up_on: date | None = strawberry.field(
        default=None, description="Call again on this day (not in the past); a contact without one clears the member's follow-up."
    )
    called_at: datetime | None = strawberry.field(
        default=None, description="When the call was made (default now); not in the future, not before the enrolment."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Retry key: the same key and content returns the first result.")
    satisfaction: int | None = strawberry.field(
        default=None, description="The member's satisfaction as told on the call, 1 (very unhappy) to 5 (very happy); REACHED calls only."
    )


@strawberry.type(description="Result of careCallLog.")
class CareCallLogPayload:
    care_call: CareCall | None = strawberry.field(description="The logged call.")
    user_errors: list[UserError] = strawberry.field(description="Why the call was refused.")


@strawberry.input(description="Feedback of a member.")
class FeedbackSubmitInput:
    member_id: strawberry.ID | None = strawberry.field(
        default=None, description="The member (staff: required, in scope; a member: omitted or their own id)."
    )
    kind: FeedbackKind = strawberry.field(description="Complaint, suggestion, praise or inquiry.")
    channel: FeedbackChannel = strawberry.field(description="How it reached the programme.")
    subject: str = strawberry.field(description="One line, 1 to 200 characters.")
    text: str = strawberry.field(description="The member's words, 1 to 5,000 characters.")
    idempotency_key: str | None = strawberry.field(default=None, description="Retry key: the same key and content returns the first result.")


@strawberry.type(description="Result of feedbackSubmit.")
class FeedbackSubmitPayload:
    feedback: Feedback | None = strawberry.field(description="The feedback item, OPEN.")
    user_errors: list[UserError] = strawberry.field(description="Why the feedback was refused.")


@strawberry.input(description="Move a feedback item to another status.")
class FeedbackUpdateInput:
    id: strawberry.ID = strawberry.field(description="The feedback item (in the caller's scope).")
    status: FeedbackStatus = strawberry.field(description="The new status; see FeedbackStatus for the transitions allowed.")
    note: str | None = strawberry.field(default=None, description="Why, up to 2,000 characters; kept in the history.")
    resolution: str | None = strawberry.field(default=None, description="The answer; required for (and only with) RESOLVED.")
    satisfaction: int | None = strawberry.field(
        default=None, description="The member's satisfaction with the resolution, 1 to 5; only with RESOLVED."
    )


@strawberry.type(description="Result of feedbackUpdate.")
class FeedbackUpdatePayload:
    feedback: Feedback | None = strawberry.field(description="The item after the change.")
    user_errors: list[UserError] = strawberry.field(description="Why the change was refused.")


@strawberry.input(description="Goodwill miles for a member: service recovery, e.g. after a complaint.")
class GoodwillCreditInput:
    member_id: strawberry.ID = strawberry.field(description="The member (ACTIVE, in the caller's scope).")
    miles: int = strawberry.field(
        description="Redeemable miles to credit: a positive whole number, at most the rules file's "
        "care.goodwill_max_miles of the caller's role (OFFICE 2,000, BRANCH 10,000, ADMIN 50,000 by default)."
    )
    reason: str = strawberry.field(description="Why, 1 to 300 characters; kept in the audit record and the entry.")
    feedback_id: strawberry.ID | None = strawberry.field(
        default=None, description="The member's feedback item the credit answers, if any."
    )
    idempotency_key: str | None = strawberry.field(default=None, description="Retry key: the same key and content returns the first credit.")


@strawberry.type(description="Result of goodwillCredit.")
class GoodwillCreditPayload:
    entry: LedgerEntry | None = strawberry.field(description="The ADJUSTMENT entry (redeemable miles only: goodwill never moves a tier).")
    member: Member | None = strawberry.field(description="The member after the credit.")
    feedback_id: strawberry.ID | None = strawberry.field(description="The feedback item the credit answers, if any.")
    user_errors: list[UserError] = strawberry.field(description="Why the credit was refused.")


@strawberry.type
class CareMutation:
    @mutation(
        description="Log a care call to a member and update the member's last contact and follow-up (office or branch staff in scope, or admin).",
        permission_classes=[allow(*STAFF)],
    )
    async def care_call_log(self, info: Info, input: CareCallLogInput) -> CareCallLogPayload:
        context = info.context
        row = await call_services.log_care_call(
            context.caller, input.member_id, input.outcome, notes=input.notes, needs=input.needs,
            follow_up_on=input.follow_up_on, called_at=input.called_at, idempotency_key=input.idempotency_key,
            satisfaction=input.satisfaction, now=context.now(), rules=context.rules, timezone=context.timezone,
        )
        return CareCallLogPayload(care_call=CareCall.from_row(row, row.member), user_errors=[])

    @mutation(
        description="Submit feedback: a member for themselves, or office/branch staff and admin for a member in scope.",
        permission_classes=[allow(Role.MEMBER, *STAFF)],
    )
    async def feedback_submit(self, info: Info, input: FeedbackSubmitInput) -> FeedbackSubmitPayload:
        context = info.context
        row = await feedback_services.submit_feedback(
            context.caller, member_id=input.member_id, kind=input.kind, channel=input.channel,
            subject=input.subject, text=input.text, idempotency_key=input.idempotency_key,
            rules=context.rules, now=context.now(),
        )
        return FeedbackSubmitPayload(feedback=Feedback.from_row(row), user_errors=[])

    @mutation(
        description="Change the status of a feedback item, with a note (office or branch staff in scope, or admin).",
        permission_classes=[allow(*STAFF)],
    )
    async def feedback_update(self, info: Info, input: FeedbackUpdateInput) -> FeedbackUpdatePayload:
        row = await feedback_services.update_feedback(
            info.context.caller, input.id, input.status, note=input.note, resolution=input.resolution,
            satisfaction=input.satisfaction, now=info.context.now(), zone=info.context.timezone,
        )
        return FeedbackUpdatePayload(feedback=Feedback.from_row(row), user_errors=[])

    @mutation(
        description="Credit goodwill miles to a member (service recovery): office or branch staff in scope, or admin, "
        "capped per role by the rules file; audited, optionally linked to the member's feedback item.",
        permission_classes=[allow(*STAFF)],
    )
    async def goodwill_credit(self, info: Info, input: GoodwillCreditInput) -> GoodwillCreditPayload:
        context = info.context
        result = await goodwill_services.credit_goodwill(
            context.caller, input.member_id, input.miles, input.reason, feedback_id=input.feedback_id,
            idempotency_key=input.idempotency_key, rules=context.rules, today=context.today(), now=context.now(),
        )
        feedback_id = result.credit.feedback_id
        return GoodwillCreditPayload(
            entry=LedgerEntry.from_row(result.entry), member=member_view(info, result.member),
            feedback_id=strawberry.ID(str(feedback_id)) if feedback_id is not None else None, user_errors=[],
        )
