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
- AT_RISK: at risk of losing the tier at validUntil (loyalty.engine.is_at_risk)
  and not reached in the last upgrade_call_days days (last contact + upgrade_call_days
  <= today); due since the member entered the at-risk horizon (validUntil -
  at_risk_months), or since the last contact + upgrade_call_days when later, never
  before tier_since nor after today.
- JUST_UPGRADED: the tier was recorded within upgrade_call_days (tier_recorded_on +
  upgrade_call_days > today; tier_since on rows from before it was kept) by a rise, not
  by a downgrade, and the member has not been reached since (on or after that day); due
  since that day. Keyed to when the upgrade was recorded, not to the flight that earned
  it: an upgrade posted late from an old flight still gets its welcome call.
- DECLINING / DORMANT: the member's lifecycle stage (care.segments, written by the
  daily refresh) is DECLINING or DORMANT, and the member has not been reached since
  the refresh day the stage began (lifecycle_since): the churn warning the stage is
  for; due since that day.
- NEVER_CALLED: never reached; due since tier_since.
- INTERVAL_PASSED: last contact + call_interval(tier) <= today (PLATINUM 30, GOLD 60,
  SILVER 90 days by default); due since that date.

Urgency: the most urgent reason (in the order above), then the tier (PLATINUM first),
then dueSince (oldest first), then member id.

The member row keeps that sort key (care_priority = reason rank * 10 + (3 - tier),
care_due_since; NULL when not due) with the day it was computed for (care_state_on)
and the next day time alone may change it (care_recheck_on). ``recompute_care_state``
writes them, from ``due_reasons``, in the transaction of every change of the facts:
a care call here, and every posting and tier change through loyalty.changes (this
module registers with it), and the daily job (``refresh_care_due``) for the members
whose recheck day has come. So the worklist pages and counts by index; the few rows
whose state does not hold on the day asked (the job has not run yet) are recomputed
at read time and merged in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from enum import Enum
from typing import NamedTuple

from collections.abc import Callable, Sequence

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from care.models import CallOutcome, CareCall
from care.region_counts import calls_due
from members.paging import newest_first
from care.satisfaction import add_score, checked_score
from loyalty import calendar as cal
from loyalty import changes, engine
from loyalty.models import TierEvent
from loyalty.rules import Rules
from members.access import (
    STAFF_ROLES, Caller, region_filter, require_role, restrict_by_member_region, restrict_members, restrict_offices,
)
from members.enums import LifecycleStage, MemberStatus, Tier
from members.errors import DomainError, invalid
from members.idempotency import run_once
from members.models import Member, Office
from members.paging import Page, after_ranges, decode_cursor, encode_cursor, page_size
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
    DECLINING = "DECLINING"
    DORMANT = "DORMANT"
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
    # The day the current tier was recorded (None: rows from before it was kept).
    recorded_on: date | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.NEW
    lifecycle_since: date | None = None

    @property
    def welcome_from(self) -> date:
        """The day the welcome call's window opens: when the tier was recorded."""
        return self.recorded_on or self.tier_since


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
    start = facts.welcome_from
    if not facts.downgraded and start <= today < start + welcome and (last is None or last < start):
        reasons.append(DueReason(CareCallReason.JUST_UPGRADED, start))
    churn = CHURN_REASONS.get(facts.lifecycle_stage)
    if churn is not None and facts.lifecycle_since is not None and (last is None or last < facts.lifecycle_since):
        reasons.append(DueReason(churn, min(facts.lifecycle_since, today)))
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


CHURN_REASONS = {LifecycleStage.DECLINING: CareCallReason.DECLINING, LifecycleStage.DORMANT: CareCallReason.DORMANT}


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


# ---- the worklist's state on the member row ------------------------------------------

# The member columns the reasons follow from (CareFacts, plus the stored retention totals
# that decide at-risk; loyalty.changes keeps them).
FACT_COLUMNS = (
    "id", "tier", "tier_since", "tier_valid_until", "care_last_contact_on", "care_follow_up_on",
    "retention_miles", "retention_segments", "tier_recorded_on", "lifecycle_stage", "lifecycle_since",
)
STATE_COLUMNS = ("care_priority", "care_due_since", "care_state_on", "care_recheck_on")


@dataclass(frozen=True)
class DueState:
    """What the member row keeps of due_reasons on a day: the sort key of the most urgent
    reason (None: not due) and the next day on which time alone may change it."""

    priority: int | None
    due_since: date | None
    recheck_on: date | None


def priority(reason: CareCallReason, tier: Tier) -> int:
    """The stored sort key's first column: the reason's rank, then PLATINUM first."""
    return reason.rank * 10 + (int(Tier.PLATINUM) - int(tier))


def _at_risk_horizon(valid_until: date, months: int) -> date:
    """The first day on which validUntil is within ``months`` (loyalty.engine.is_at_risk):
    the least T with valid_until <= add_months(T, months); add_months is monotonic."""
    day = cal.add_months(valid_until, -months)
    while cal.add_months(day - timedelta(days=1), months) >= valid_until:
        day -= timedelta(days=1)
    while cal.add_months(day, months) < valid_until:
        day += timedelta(days=1)
    return day


def _recheck_on(facts: CareFacts, rules: Rules, today: date) -> date | None:
    """The next day after today on which due_reasons may change with the facts unchanged:
    every date its conditions compare today with (a superset is harmless: the job finds
    nothing changed and moves the day on)."""
    tier = Tier(facts.tier)
    interval = rules.care.call_interval(tier.name)
    if not tier.is_vip or interval is None:
        return None
    if facts.tier_since > today or (facts.lifecycle_since or today) > today:
        return today + timedelta(days=1)  # dueSince is capped at today until then
    welcome = timedelta(days=rules.care.upgrade_call_days)
    days = [facts.follow_up_on, facts.welcome_from, facts.welcome_from + welcome]
    if facts.last_contact_on is not None:
        days += [facts.last_contact_on + welcome, facts.last_contact_on + timedelta(days=interval)]
    if facts.tier_valid_until is not None:
        days.append(_at_risk_horizon(facts.tier_valid_until, rules.at_risk_months))
    return min((day for day in days if day is not None and day > today), default=None)


def due_state(facts: CareFacts, rules: Rules, today: date, at_risk: bool) -> DueState:
    """The member row's worklist state on ``today``, from due_reasons."""
    reasons = due_reasons(facts, rules, today, at_risk)
    first = reasons[0] if reasons else None
    return DueState(
        priority(first.reason, Tier(facts.tier)) if first else None,
        first.since if first else None,
        _recheck_on(facts, rules, today),
    )


async def _stale_rows(region, today: date, *columns: str) -> list[dict]:
    """The rows of ``region`` (a member queryset) whose stored state does not hold on
    ``today`` (time has reached its recheck day and the daily job has not run yet, or it
    was computed for a later day: a job run ahead, a clock set back), with ``columns``
    and id. Two seeks rather than one OR, which databases tend to answer with a scan:
    by recheck day ((office_id | branch_id,) care_recheck_on), and by care_state_on only
    when some state was computed for a later day than ``today``."""
    columns = ("id", *(column for column in columns if column != "id"))
    rows = {row["id"]: row for row in await region.filter(care_recheck_on__lte=today).values(*columns)}
    latest = await Member.annotate(latest=Max("care_state_on")).first().values_list("latest", flat=True)
    if latest is not None and latest > today:  # MAX: one index probe (an EXISTS may scan)
        rows.update((row["id"], row) for row in await region.filter(care_state_on__gt=today).values(*columns))
    return list(rows.values())


async def _downgraded(member_ids: Sequence[int], connection: BaseDBAsyncClient | None = None) -> set[int]:
    """Those of the members whose latest tier event lowered the tier: two queries."""
    if not member_ids:
        return set()
    events = TierEvent.filter(member_id__in=list(member_ids))
    if connection is not None:
        events = events.using_db(connection)
    latest = await events.annotate(last=Max("id")).group_by("member_id").values_list("last", flat=True)
    rows = TierEvent.filter(id__in=list(latest))
    if connection is not None:
        rows = rows.using_db(connection)
    return {member_id for member_id, from_tier, to_tier in await rows.values_list("member_id", "from_tier", "to_tier")
            if to_tier < from_tier}


async def _facts(
    rows: Sequence[dict], rules: Rules, today: date, connection: BaseDBAsyncClient | None = None
) -> list[tuple[CareFacts, bool]]:
    """(facts, at risk) of member rows holding FACT_COLUMNS. Whether the tier came by a
    downgrade is read only for tiers recent enough for a welcome call."""
    recent = today - timedelta(days=rules.care.upgrade_call_days)
    down = await _downgraded([row["id"] for row in rows if (row["tier_recorded_on"] or row["tier_since"]) > recent], connection)
    result = []
    for row in rows:
        tier = Tier(row["tier"])
        facts = CareFacts(
            row["id"], tier, row["tier_since"], row["tier_valid_until"], row["care_last_contact_on"],
            row["care_follow_up_on"], downgraded=row["id"] in down, recorded_on=row["tier_recorded_on"],
            lifecycle_stage=LifecycleStage(row["lifecycle_stage"]), lifecycle_since=row["lifecycle_since"],
        )
        at_risk = engine.is_at_risk(
            rules, tier.name, row["tier_valid_until"], today, row["retention_miles"], row["retention_segments"]
        )
        result.append((facts, at_risk))
    return result


@changes.listen
async def recompute_care_state(
    connection: BaseDBAsyncClient, member_ids: Sequence[int], rules: Rules, today: date
) -> int:
    """Store the worklist state of these members as of ``today`` (in the caller's
    transaction): per chunk one read of their facts, the tier events of recent tiers, one
    batched update. Every change of the facts calls it (loyalty.changes.members_changed,
    log_care_call), as does the daily job for the members whose recheck day has come.
    Returns how many of them are due a call."""
    return await _care_states(connection, member_ids, rules, today, write=True)


async def _care_states(
    connection: BaseDBAsyncClient, member_ids: Sequence[int], rules: Rules, today: date, *, write: bool
) -> int:
    """recompute_care_state; with write=False it only counts (a dry run)."""
    due = 0
    for ids in changes.chunked(list(member_ids)):
        rows = await Member.filter(id__in=list(ids)).using_db(connection).values(*FACT_COLUMNS)
        updates = []
        for facts, at_risk in await _facts(rows, rules, today, connection):
            state = due_state(facts, rules, today, at_risk)
            due += state.priority is not None
            updates.append((state.priority, state.due_since, today, state.recheck_on, facts.member_id))
        if write:
            await changes.update_each(connection, STATE_COLUMNS, updates)
    return due


@dataclass(frozen=True)
class DueRefreshSummary:
    members: int  # members whose state was recomputed
    due: int  # of those, due a call as of the day


async def refresh_care_due(
    rules: Rules, today: date, progress: Callable[[int, int], None] | None = None, *, dry_run: bool = False
) -> DueRefreshSummary:
    """The daily part of `loyalty care refresh`: recompute the worklist state of the
    members whose recheck day has come (or whose state was computed for a later day),
    found by index, in short transactions of a chunk each; the cost grows with those
    members, not with all members. ``dry_run``: the same counts, nothing written."""
    ids = sorted(row["id"] for row in await _stale_rows(Member.all(), today))
    due = done = 0
    if progress:
        progress(0, len(ids))
    for chunk in changes.chunked(ids):
        async with in_transaction() as connection:
            due += await _care_states(connection, chunk, rules, today, write=not dry_run)
        done += len(chunk)
        if progress:
            progress(done, len(ids))
    return DueRefreshSummary(members=len(ids), due=due)


# ---- the worklist ----------------------------------------------------------------------


DUE_COLUMNS = ("care_priority", "care_due_since", "id")


def _after(key: tuple[int, int, date, int]) -> list[Q]:
    """Rows after the cursor in (care_priority, care_due_since, id) order, as ranges read
    one after the other (members.paging.after_ranges): each seeks to the key, where one
    condition would read every member of the cursor's priority due before it (a
    priority has a tenth of the members due, a number that grows with the office)."""
    rank, negative_tier, since, pk = key
    level = rank * 10 + int(Tier.PLATINUM) + negative_tier
    return after_ranges(DUE_COLUMNS, (level, since, pk))


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
    outside the scope or a role other than staff; INVALID for an unknown code or cursor.

    The page is an index read of the stored state (care_priority, care_due_since, id),
    the count a sum of the offices' rows of members due (care.region_counts, one per
    office, kept by triggers from the same state); rows whose stored state does not hold today (the daily job has
    not reached them yet) are recomputed here and merged in, so the answer is exact on
    any day at the cost of those rows only."""
    _check_staff(caller, "care calls")
    size = page_size(first, DEFAULT_DUE_PAGE)
    start = _after_key(after) if after else None
    columns = await region_filter(caller, office_code, branch_code)
    region = restrict_members(Member.all(), caller).filter(**columns)
    offices = restrict_offices(Office.filter(**{"id" if k == "office_id" else k: v for k, v in columns.items()}), caller)

    # Only ACTIVE members are listed; the stale rows are found by region alone (status
    # would steer the database to the worklist index) and narrowed here.
    stale_rows = [
        row for row in await _stale_rows(region, today, *FACT_COLUMNS, "status", "care_priority")
        if MemberStatus(row["status"]) is MemberStatus.ACTIVE
    ]
    stale_ids = {row["id"] for row in stale_rows}
    stale_counted = sum(1 for row in stale_rows if row["care_priority"] is not None)
    stale_due = 0
    merged: list[tuple[tuple[int, int, date, int], CareFacts, list[DueReason]]] = []
    for facts, at_risk in await _facts(stale_rows, rules, today):
        if reasons := due_reasons(facts, rules, today, at_risk):
            stale_due += 1
            if start is None or _sort_key(facts, reasons) > start:
                merged.append((_sort_key(facts, reasons), facts, reasons))

    due = region.filter(status=MemberStatus.ACTIVE, care_priority__gte=0)

    async def total() -> int:
        """Counted only when totalCount is asked: the stored due rows (from the offices'
        rollup rows, care.region_counts), corrected for the stale ones."""
        return await calls_due(offices) - stale_counted + stale_due

    wanted = size + 1 + len(stale_ids)
    page_rows: list[Member] = []
    for part in _after(start) if start else [Q()]:
        page_rows += await due.filter(part).order_by(*DUE_COLUMNS).limit(wanted - len(page_rows))
        if len(page_rows) >= wanted:
            break
    fresh = [row for row in page_rows if row.id not in stale_ids]
    loaded = {row.id: row for row in fresh}
    fresh_facts = await _facts([{column: getattr(row, column) for column in FACT_COLUMNS} for row in fresh], rules, today)
    for facts, at_risk in fresh_facts:
        reasons = due_reasons(facts, rules, today, at_risk)
        if reasons:
            merged.append((_sort_key(facts, reasons), facts, reasons))
    merged.sort(key=lambda item: item[0])
    page = merged[:size]
    missing = [facts.member_id for _, facts, _ in page if facts.member_id not in loaded]
    if missing:
        loaded.update({row.id: row for row in await Member.filter(id__in=missing)})
    return Page(
        items=[CareCallDue(loaded[facts.member_id], reasons, facts) for _, facts, reasons in page],
        cursors=[_cursor(key) for key, _, _ in page],
        has_next_page=len(merged) > size,
        count=total,
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
    satisfaction: int | None = None,
    now: datetime,
    rules: Rules,
    timezone: tzinfo = dt_timezone.utc,
) -> CareCall:
    """Log a call (office or branch staff in scope, or admin) to an ACTIVE member the
    caller may see, and update the member's care columns in the same transaction. The
    returned call has its member loaded (``call.member``). calledAt (default now) may
    be neither in the future nor before the enrolment; followUpOn not before today;
    satisfaction (1 to 5) only on a REACHED call, counted on the call's day in its
    office (care.satisfaction)."""
    _check_staff(caller, "care calls")
    outcome = CallOutcome(outcome)
    satisfaction = checked_score(satisfaction, "input", "satisfaction")
    if satisfaction is not None and outcome is not CallOutcome.REACHED:
        raise invalid("satisfaction is told only on a REACHED call", "input", "satisfaction")
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
        "followUpOn": follow_up_on, "calledAt": called_at, "satisfaction": satisfaction,
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
            satisfaction=satisfaction, using_db=connection,
        )
        values: dict = {}
        day = _day(at, timezone)
        if satisfaction is not None:
            await add_score(connection, member.office_id, day, satisfaction)
        if outcome.is_contact and (member.care_last_contact_on is None or member.care_last_contact_on < day):
            values["care_last_contact_on"] = day
        later = await CareCall.filter(member_id=member.id, called_at__gt=at).using_db(connection).exists()
        if not later and (follow_up_on is not None or outcome.is_contact):
            values["care_follow_up_on"] = follow_up_on
        if values:
            await Member.filter(id=member.id).using_db(connection).update(**values)
            await recompute_care_state(connection, [member.id], rules, today)
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
