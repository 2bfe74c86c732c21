"""Care calls: logging a call to a member, and the worklist of VIPs due a call.

Logging writes the CareCall and the member's care columns in ONE transaction:
care_last_contact_on becomes the call's day (in the programme's time zone) when the
call was a contact (REACHED or DECLINED), never moving backwards; care_follow_up_on
becomes the call's followUpOn, a contact without a follow-up clears it, and a call
that did not reach the member leaves it. A call logged after a later one (calledAt
before the member's latest logged call) does not touch the follow-up date.

The worklist (``care_calls_due``) lists the caller's ACTIVE VIPs (tier SILVER and
above) that are due a call, each with every reason that applies (``due_reasons``, a
pure function of the member's facts):

- FOLLOW_UP_DUE: the follow-up date has come (care_follow_up_on <= today); due since
  the follow-up date.
- AT_RISK: at risk of losing the tier at validUntil (loyalty.tiers.at_risk_member_ids)
  and not reached in the last upgrade_call_days days (last contact + upgrade_call_days
  <= today); due since the member entered the at-risk horizon (validUntil -
  at_risk_months), or since the last contact + upgrade_call_days when later, never
  before tier_since nor after today.
- JUST_UPGRADED: the tier was reached within upgrade_call_days (tier_since +
  upgrade_call_days > today) by a rise, not by a downgrade, and the member has not been
  reached since (on or after tier_since); due since tier_since.
- NEVER_CALLED: never reached; due since tier_since.
- INTERVAL_PASSED: last contact + call_interval(tier) <= today (PLATINUM 30, GOLD 60,
  SILVER 90 days by default); due since that date.

Urgency: the most urgent reason (in the order above), then the tier (PLATINUM first),
then dueSince (oldest first), then member id. The database narrows the candidates
(any of the conditions above, with the smallest call interval); the exact reasons are
decided here, and the page is cut by a cursor holding that sort key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from enum import Enum
from typing import NamedTuple

from tortoise.expressions import Q, Subquery
from tortoise.functions import Max

from care.models import CallOutcome, CareCall
from care.paging import newest_first
from care.segments import chunks
from loyalty import calendar as cal
from loyalty.models import TierEvent
from loyalty.rules import Rules
from loyalty.tiers import at_risk_member_ids
from members.access import STAFF_ROLES, Caller, in_region, require_role, restrict_by_member_region, restrict_members
from members.enums import MemberStatus, Tier
from members.errors import DomainError, invalid
from members.idempotency import run_once
from members.models import Member
from members.paging import Page, decode_cursor, encode_cursor, known_count, page_size
from members.services import visible_member

__all__ = [
    "CareCallDue",
    "CareCallReason",
    "CareFacts",
    "DueReason",
    "MAX_NEEDS",
    "care_calls_due",
    "due_reasons",
    "log_care_call",
    "member_care_calls",
]

MAX_NEEDS = 20
MAX_NEED_LENGTH = 100
MAX_NOTES_LENGTH = 2000
DUE_ORDER = "careCallsDue"
CALLS_ORDER = "careCalls"
DEFAULT_DUE_PAGE = 50  # Query.careCallsDue (first = 50)
DEFAULT_CALLS_PAGE = 20  # Member.careCalls (first = 20)


class CareCallReason(str, Enum):
    """Why a VIP is due a call, most urgent first."""

    FOLLOW_UP_DUE = "FOLLOW_UP_DUE"
    AT_RISK = "AT_RISK"
    JUST_UPGRADED = "JUST_UPGRADED"
    NEVER_CALLED = "NEVER_CALLED"
    INTERVAL_PASSED = "INTERVAL_PASSED"

    @property
    def rank(self) -> int:
        return list(CareCallReason).index(self)


@dataclass(frozen=True)
class CareFacts:
    """What decides whether a member is due a call (the member row's care columns)."""

    member_id: int
    tier: Tier
    tier_since: date
    tier_valid_until: date | None = None
    last_contact_on: date | None = None
    follow_up_on: date | None = None
    # The current tier was reached by a downgrade (the member's latest tier event lowered it).
    downgraded: bool = False


class DueReason(NamedTuple):
    reason: CareCallReason
    since: date


def due_reasons(facts: CareFacts, rules: Rules, today: date, at_risk: bool) -> list[DueReason]:
    """Every reason the member is due a call today, most urgent first, each with the day
    it has been due since (see the module docstring). ``at_risk``: the member is at risk
    of downgrade (loyalty.tiers). Status is the caller's to check (ACTIVE only)."""
    tier = Tier(facts.tier)
    interval = rules.care.call_interval(tier.name)
    if not tier.is_vip or interval is None:
        return []
    last = facts.last_contact_on
    welcome = timedelta(days=rules.care.upgrade_call_days)
    reasons: list[DueReason] = []
    if facts.follow_up_on is not None and facts.follow_up_on <= today:
        reasons.append(DueReason(CareCallReason.FOLLOW_UP_DUE, facts.follow_up_on))
    if at_risk and facts.tier_valid_until is not None and (last is None or last + welcome <= today):
        since = max(cal.add_months(facts.tier_valid_until, -rules.at_risk_months), facts.tier_since)
        if last is not None:
            since = max(since, last + welcome)
        reasons.append(DueReason(CareCallReason.AT_RISK, min(since, today)))
    if (
        not facts.downgraded
        and facts.tier_since <= today < facts.tier_since + welcome
        and (last is None or last < facts.tier_since)
    ):
        reasons.append(DueReason(CareCallReason.JUST_UPGRADED, facts.tier_since))
    if last is None:
        reasons.append(DueReason(CareCallReason.NEVER_CALLED, facts.tier_since))
    elif last + timedelta(days=interval) <= today:
        reasons.append(DueReason(CareCallReason.INTERVAL_PASSED, last + timedelta(days=interval)))
    return reasons


@dataclass(frozen=True)
class CareCallDue:
    member: Member
    reasons: list[DueReason]
    facts: CareFacts

    @property
    def reason(self) -> CareCallReason:
        return self.reasons[0].reason

    @property
    def due_since(self) -> date:
        return self.reasons[0].since


def _sort_key(facts: CareFacts, reasons: list[DueReason]) -> tuple[int, int, date, int]:
    return (reasons[0].reason.rank, -int(facts.tier), reasons[0].since, facts.member_id)


def _cursor(key: tuple[int, int, date, int]) -> str:
    rank, tier, since, pk = key
    return encode_cursor(DUE_ORDER, [rank, tier, since.isoformat(), pk])


def _after_key(after: str) -> tuple[int, int, date, int]:
    rank, tier, since, pk = decode_cursor(after, DUE_ORDER, 4)
    if not all(type(v) is int for v in (rank, tier, pk)) or not isinstance(since, str):
        raise invalid("after is not a valid cursor", "after")
    try:
        return rank, tier, date.fromisoformat(since), pk
    except ValueError:
        raise invalid("after is not a valid cursor", "after") from None


def _check_staff(caller: Caller, what: str) -> None:
    require_role(caller, STAFF_ROLES, f"{what} are for office, branch and admin staff")


def _candidates(rules: Rules, today: date) -> Q:
    """A superset of the members due a call: any reason's condition, with the smallest
    call interval standing for every tier's."""
    smallest = min(rules.care.call_interval(tier.name) for tier in Tier if tier.is_vip)
    return Q(
        Q(care_follow_up_on__lte=today),
        Q(care_last_contact_on__isnull=True),
        Q(care_last_contact_on__lte=today - timedelta(days=smallest)),
        Q(tier_since__gt=today - timedelta(days=rules.care.upgrade_call_days)),
        Q(tier_valid_until__lte=cal.add_months(today, rules.at_risk_months)),
        join_type="OR",
    )


async def _downgraded(candidates, rules: Rules, today: date) -> set[int]:
    """Of the candidates whose tier_since is recent enough for a welcome call, those whose
    latest tier event lowered the tier: two queries (the latest event ids, the events)."""
    recent = candidates.filter(tier_since__gt=today - timedelta(days=rules.care.upgrade_call_days))
    latest = await (
        TierEvent.filter(member_id__in=Subquery(recent.values("id")))
        .annotate(last=Max("id")).group_by("member_id").values_list("last", flat=True)
    )
    down: set[int] = set()
    for ids in chunks(sorted(latest)):
        rows = await TierEvent.filter(id__in=ids).values_list("member_id", "from_tier", "to_tier")
        down |= {member_id for member_id, from_tier, to_tier in rows if to_tier < from_tier}
    return down


async def care_calls_due(
    caller: Caller,
    rules: Rules,
    today: date,
    office_code: str | None = None,
    branch_code: str | None = None,
    first: int | None = DEFAULT_DUE_PAGE,
    after: str | None = None,
) -> Page[CareCallDue]:
    """A page of the caller's ACTIVE VIPs due a call (narrowed to an office or branch in
    scope), most urgent first, with the total number due. ForbiddenError for a region
    outside the scope or a role other than staff; INVALID for an unknown code or cursor."""
    _check_staff(caller, "care calls")
    size = page_size(first, DEFAULT_DUE_PAGE)
    start = _after_key(after) if after else None
    members = restrict_members(Member.filter(status=MemberStatus.ACTIVE, tier__gte=Tier.SILVER), caller)
    candidates = (await in_region(members, caller, office_code, branch_code)).filter(_candidates(rules, today))
    rows = await candidates.values_list(
        "id", "tier", "tier_since", "tier_valid_until", "care_last_contact_on", "care_follow_up_on"
    )
    at_risk = await at_risk_member_ids(candidates, rules=rules, today=today)
    down = await _downgraded(candidates, rules, today)
    due: list[tuple[tuple[int, int, date, int], CareFacts, list[DueReason]]] = []
    for pk, tier, since, until, last, follow_up in rows:
        facts = CareFacts(pk, Tier(tier), since, until, last, follow_up, downgraded=pk in down)
        reasons = due_reasons(facts, rules, today, pk in at_risk)
        if reasons:
            due.append((_sort_key(facts, reasons), facts, reasons))
    due.sort(key=lambda item: item[0])
    after_start = [item for item in due if start is None or item[0] > start]
    page = after_start[:size]
    loaded = {m.id: m for m in await Member.filter(id__in=[facts.member_id for _, facts, _ in page])} if page else {}
    return Page(
        items=[CareCallDue(loaded[facts.member_id], reasons, facts) for _, facts, reasons in page],
        cursors=[_cursor(key) for key, _, _ in page],
        has_next_page=len(after_start) > size,
        count=known_count(len(due)),
    )


# ---- logging a call ----------------------------------------------------------------


def _notes(notes: str | None) -> str | None:
    notes = (notes or "").strip()
    if len(notes) > MAX_NOTES_LENGTH:
        raise invalid(f"notes are longer than {MAX_NOTES_LENGTH} characters", "input", "notes")
    return notes or None


def _needs(needs: list[str] | None) -> list[str]:
    needs = list(needs or [])
    if len(needs) > MAX_NEEDS:
        raise invalid(f"at most {MAX_NEEDS} needs", "input", "needs")
    cleaned = []
    for index, need in enumerate(needs):
        need = " ".join((need or "").split())
        if not 1 <= len(need) <= MAX_NEED_LENGTH:
            raise invalid(f"each need must be 1 to {MAX_NEED_LENGTH} characters", "input", "needs", str(index))
        cleaned.append(need)
    return cleaned


def _day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


async def log_care_call(
    caller: Caller,
    member_id: str,
    outcome: CallOutcome,
    *,
    notes: str | None = None,
    needs: list[str] | None = None,
    follow_up_on: date | None = None,
    called_at: datetime | None = None,
    idempotency_key: str | None = None,
    now: datetime,
    timezone: tzinfo = dt_timezone.utc,
) -> CareCall:
    """Log a call (office or branch staff in scope, or admin) to an ACTIVE member the
    caller may see, and update the member's care columns in the same transaction. The
    returned call has its member loaded (``call.member``). calledAt (default now) may
    be neither in the future nor before the enrolment; followUpOn not before today."""
    _check_staff(caller, "care calls")
    outcome = CallOutcome(outcome)
    notes = _notes(notes)
    needs = _needs(needs)
    if called_at is not None and called_at.tzinfo is None:
        raise invalid("calledAt needs a time zone offset", "input", "calledAt")
    # In UTC: SQLite compares a filter's instant with the stored (UTC) text as text.
    now = now.astimezone(dt_timezone.utc)
    called_at = called_at.astimezone(dt_timezone.utc) if called_at is not None else None
    today = _day(now, timezone)
    content = {
        "memberId": str(member_id), "outcome": outcome.value, "notes": notes, "needs": needs,
        "followUpOn": follow_up_on, "calledAt": called_at,
    }

    async def work(connection) -> tuple[CareCall, int]:
        member = await visible_member(caller, member_id, "input", "memberId")
        member = await Member.select_for_update().using_db(connection).get(id=member.id)
        if member.status is not MemberStatus.ACTIVE:
            raise DomainError("MEMBER_NOT_ACTIVE", f"the member is {member.status.value}", ("input", "memberId"))
        at = called_at or now
        if at > now:
            raise invalid("calledAt must not be in the future", "input", "calledAt")
        if at < member.enrolled_at:
            raise invalid("calledAt must not be before the member enrolled", "input", "calledAt")
        if follow_up_on is not None and follow_up_on < today:
            raise invalid("followUpOn must not be in the past", "input", "followUpOn")
        call = await CareCall.create(
            member_id=member.id, office_id=member.office_id, branch_id=member.branch_id, called_at=at,
            outcome=outcome, notes=notes, needs=needs, follow_up_on=follow_up_on, actor=caller.actor,
            using_db=connection,
        )
        values: dict = {}
        day = _day(at, timezone)
        if outcome.is_contact and (member.care_last_contact_on is None or member.care_last_contact_on < day):
            values["care_last_contact_on"] = day
        later = await CareCall.filter(member_id=member.id, called_at__gt=at).using_db(connection).exists()
        if not later and (follow_up_on is not None or outcome.is_contact):
            values["care_follow_up_on"] = follow_up_on
        if values:
            await Member.filter(id=member.id).using_db(connection).update(**values)
        return call, call.id

    async def load(call_id: int) -> CareCall:
        return await CareCall.get(id=call_id).prefetch_related("member")

    call = await run_once(
        caller=caller.key, key=idempotency_key, operation="careCallLog", content=content, work=work, load=load
    )
    return await load(call.id)


async def member_care_calls(
    caller: Caller, member: Member, first: int | None = DEFAULT_CALLS_PAGE, after: str | None = None
) -> Page[CareCall]:
    """Calls to a member (whom the caller may see), newest first by calledAt; staff only,
    scoped by the office the member had at each call."""
    _check_staff(caller, "care calls")
    query = restrict_by_member_region(CareCall.filter(member_id=member.id), caller)
    return await newest_first(query, "called_at", CALLS_ORDER, first, after, DEFAULT_CALLS_PAGE)
