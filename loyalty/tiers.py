"""Tier services: a member's tier status, the admin override, the retention review
job and the at-risk selection.

Pure decisions live in loyalty.engine; this module reads the totals they need and
writes every tier change through loyalty.events.record_tier_change, in the
transaction of the decision.

Dates (RULES.md "Retention", "Dates"):

- The rolling window of a status is the window_months ending with today's month.
- A review decides every elite tier whose validUntil is BEFORE ``as_of`` (a tier is
  held through its validUntil), counting the window_months ending with validUntil's
  month, and repeats for a member until validUntil >= as_of or STANDARD, so a late run
  catches up one decision (one TierEvent) at a time.
- A RETENTION keeps the member's ``tier_since`` (the tier has been held without a
  break since then) and moves validUntil on; a DOWNGRADE starts the lower tier on the
  day after the old validUntil. The event's effective_at is that day at 00:00 UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from tortoise.expressions import Q, Subquery
from tortoise.functions import Coalesce, Sum
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from loyalty import book
from loyalty import calendar as cal
from loyalty import engine, lots
from loyalty.changes import members_changed
from loyalty.events import record_tier_change
from loyalty.models import LedgerEntry, TierChangeReason, TierEvent
from loyalty.rules import Rules
from loyalty.totals import window_totals, window_totals_by_member
from members.access import Caller, Role
from members.enums import Tier
from members.errors import ForbiddenError, invalid
from members.models import Member
from members.paging import after_key
from members.services import visible_member

__all__ = [
    "ReviewSummary",
    "TierStatusView",
    "at_risk_member_ids",
    "override_tier",
    "review_tiers",
    "tier_status",
    "tier_statuses",
]

MAX_REASON = 280  # kept on the event's note (300)


# ---- status ------------------------------------------------------------------------


@dataclass(frozen=True)
class TierStatusView:
    tier: Tier
    since: date
    valid_until: date | None
    qualifying_miles: int
    qualifying_segments: int  # hundredths
    next_tier: Tier | None
    miles_to_next_tier: int | None
    segments_to_next_tier: int | None  # hundredths
    at_risk_of_downgrade: bool


async def tier_status(member: Member, *, rules: Rules, today: date) -> TierStatusView:
    """The member's tier, the qualifying totals of the window_months ending with today's
    month, what is missing for the next tier (on the miles route and on the segments
    route, each alone) and whether the tier is at risk at its validUntil."""
    (view,) = await tier_statuses([member], rules=rules, today=today)
    return view


async def tier_statuses(members: Sequence[Member], *, rules: Rules, today: date) -> list[TierStatusView]:
    """tier_status of each member, in order, in at most three queries whatever their
    number: ONE grouped sum of the current window's totals, and at_risk_member_ids' two
    (only when one of them is close enough to review to be at risk)."""
    start, end = cal.window(today, rules.window_months)
    totals = await window_totals_by_member({member.id for member in members}, start, end)
    horizon = cal.add_months(today, rules.at_risk_months)
    near_review = [
        member.id for member in members
        if member.tier is not Tier.STANDARD and member.tier_valid_until is not None and member.tier_valid_until <= horizon
    ]
    at_risk = await at_risk_member_ids(Member.filter(id__in=near_review), rules=rules, today=today) if near_review else set()
    views = []
    for member in members:
        tier = Tier(member.tier)
        miles, segments = totals.get(member.id, (0, 0))
        next_name, miles_missing, segments_missing = engine.next_tier_gap(rules, tier.name, miles, segments)
        views.append(TierStatusView(
            tier=tier,
            since=member.tier_since,
            valid_until=member.tier_valid_until,
            qualifying_miles=miles,
            qualifying_segments=segments,
            next_tier=Tier[next_name] if next_name is not None else None,
            miles_to_next_tier=miles_missing,
            segments_to_next_tier=segments_missing,
            at_risk_of_downgrade=member.id in at_risk,
        ))
    return views


# ---- override ----------------------------------------------------------------------


async def override_tier(
    caller: Caller,
    member_id: str,
    tier: Tier,
    valid_until: date | None,
    reason: str,
    *,
    rules: Rules,
    today: date,
) -> tuple[Member, TierEvent]:
    """Admin: set any tier by hand (reason MANUAL), audited with the reason and the caller.

    validUntil defaults to what an upgrade today would give; STANDARD has none (giving
    one is INVALID); a validUntil before today is INVALID. Setting the tier the member
    already holds is allowed (it changes the validity) and is logged like any override.
    """
    if caller.role is not Role.ADMIN or caller.blocked:
        raise ForbiddenError("only an admin may override a tier")
    text = " ".join((reason or "").split())
    if not text:
        raise invalid("a reason is required", "input", "reason")
    if len(text) > MAX_REASON:
        raise invalid(f"reason is longer than {MAX_REASON} characters", "input", "reason")
    tier = Tier(tier)
    if tier is Tier.STANDARD:
        if valid_until is not None:
            raise invalid("STANDARD has no validUntil", "input", "validUntil")
    elif valid_until is None:
        valid_until = cal.upgrade_valid_until(today, rules.tier(tier.name).validity_months)
    elif valid_until < today:
        raise invalid(f"validUntil {valid_until} is in the past", "input", "validUntil")
    member = await visible_member(caller, member_id, "input", "memberId")
    async with in_transaction() as connection:
        # First statement: a write on the member's row (adds 0 miles), which serialises
        # this with any posting of the member (see loyalty.ledger).
        await lots.change_balance(connection, member.id, 0)
        member = await Member.get(id=member.id).using_db(connection)
        event = await record_tier_change(
            connection, member, to_tier=tier, reason=TierChangeReason.MANUAL, since=today,
            valid_until=valid_until, actor=caller.actor, note=text, recorded_on=today,
        )
        await members_changed(connection, [member.id], rules, today)
        member = await Member.get(id=member.id).using_db(connection)
    return member, event


# ---- review ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewSummary:
    examined: int  # members with a decision due
    retained: int  # of those, members who end the run on the tier they started it with
    downgraded: int  # members who end the run on a lower tier
    events: int  # TierEvents written (a late run may write several per member)
    # The first few members decided, (card number, tier before, tier after), in the
    # order decided: what a dry run shows.
    sample: tuple[tuple[str, Tier, Tier], ...] = field(default=(), compare=False)


async def _review_member(
    member_id: int, as_of: date, rules: Rules, actor: str, *, dry_run: bool = False
) -> tuple[Tier, Tier, int, str] | None:
    """Decide every validUntil < as_of of one member, oldest first, in one short
    transaction. Returns (tier before, tier after, events written, card number), or None
    when the member had nothing due any more (changed since it was selected). A dry run
    makes the same decisions on the member in memory, reads only and writes nothing."""
    async with in_transaction() as connection:
        if not dry_run:
            # First statement: a write on the member's row, so that a posting of the same
            # member (an upgrade, a reversal) runs wholly before or after this decision.
            await lots.change_balance(connection, member_id, 0)
        member = await Member.get(id=member_id).using_db(connection)
        before, written = Tier(member.tier), 0
        while (
            member.tier is not Tier.STANDARD
            and member.tier_valid_until is not None
            and member.tier_valid_until < as_of
        ):
            old_until = member.tier_valid_until
            start, end = book.review_window(rules, old_until)
            miles, segments = await window_totals(member.id, start, end, connection=connection)
            change = book.review(rules, member.tier.name, member.tier_since, old_until, miles, segments)
            written += 1
            if dry_run:
                member.tier, member.tier_since, member.tier_valid_until = Tier[change.to_tier], change.since, change.valid_until
                continue
            await record_tier_change(
                connection, member, to_tier=Tier[change.to_tier], reason=change.reason, since=change.since,
                valid_until=change.valid_until, actor=actor, note=change.note, effective_at=change.effective_at,
            )
        if not written:
            return None
        if not dry_run:
            # The review's day stands for today: the decisions take effect by as_of.
            await members_changed(connection, [member.id], rules, as_of)
        return before, Tier(member.tier), written, member.card_number


async def review_tiers(
    as_of: date,
    *,
    rules: Rules,
    actor: str = book.REVIEW_ACTOR,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 500,
    dry_run: bool = False,
    sample_size: int = 5,
) -> ReviewSummary:
    """Decide every elite tier whose validUntil is before ``as_of`` (RETENTION or
    DOWNGRADE), catching up several years for a member if the job was not run. Only
    members with a decision due are read, in batches by (validUntil, id); each member is decided
    in its own short transaction. A second run with the same ``as_of`` finds nothing.
    ``dry_run``: the same decisions and counts, nothing written (no lock taken either)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    # Only elite tiers have a validUntil (engine: None for STANDARD), so the range of
    # the (tier_valid_until, id) index is the members due; a `tier > STANDARD` condition
    # would add nothing but tempt PostgreSQL to read every VIP's entry of a tier index.
    due = Member.filter(tier_valid_until__lt=as_of)
    total = await due.count()
    examined = retained = downgraded = events = 0
    sample: list[tuple[str, Tier, Tier]] = []
    last: tuple[date, int] | None = None
    if progress:
        progress(0, total)
    while True:
        # By key (validUntil, id) in the order of the index on them: a batch reads its
        # own rows, never all members due.
        after = due if last is None else due.filter(after_key(("tier_valid_until", "id"), last))
        batch = await after.order_by("tier_valid_until", "id").limit(batch_size).values_list("tier_valid_until", "id")
        if not batch:
            break
        for _, member_id in batch:
            outcome = await _review_member(member_id, as_of, rules, actor, dry_run=dry_run)
            if outcome is None:
                continue
            before, after_tier, written, card = outcome
            if len(sample) < sample_size:
                sample.append((card, before, after_tier))
            examined += 1
            events += written
            if after_tier == before:
                retained += 1
            else:
                downgraded += 1
        last = batch[-1]
        if progress:
            progress(examined, max(total, examined))
    return ReviewSummary(
        examined=examined, retained=retained, downgraded=downgraded, events=events, sample=tuple(sample)
    )


# ---- at risk -----------------------------------------------------------------------


async def at_risk_member_ids(member_ids_query: QuerySet[Member], *, rules: Rules, today: date) -> set[int]:
    """Ids of the members of ``member_ids_query`` (already scoped to the caller) whose
    elite tier ends within at_risk_months of today (or is already due for review) and
    whose retention-window totals so far are below the tier's retain thresholds.

    Two queries whatever the number of candidates: the candidates' (id, tier, validUntil)
    and ONE grouped aggregate of their retention-window totals. Members sharing a
    validUntil month share a window, so the aggregate is one OR of a few (candidates
    with validUntil in month M, activity in M's window) terms; candidates are named by
    subquery, never by a list of ids.
    """
    horizon = cal.add_months(today, rules.at_risk_months)
    candidates = member_ids_query.filter(tier__gt=Tier.STANDARD, tier_valid_until__lte=horizon)
    rows = await candidates.values_list("id", "tier", "tier_valid_until")
    if not rows:
        return set()
    months = sorted({cal.month_start(valid_until) for _, _, valid_until in rows})
    condition = Q()
    for index, month in enumerate(months):
        start, end = cal.retention_window(month, rules.window_months)
        in_month = candidates.filter(
            tier_valid_until__gte=month, tier_valid_until__lte=cal.month_end(month)
        ).values("id")
        term = Q(member_id__in=Subquery(in_month), activity_date__gte=start, activity_date__lte=end)
        condition = term if index == 0 else condition | term
    totals = await (
        LedgerEntry.filter(condition)
        .annotate(miles=Coalesce(Sum("qualifying_miles"), 0), segments=Coalesce(Sum("qualifying_segments"), 0))
        .group_by("member_id")
        .values("member_id", "miles", "segments")
    )
    by_member = {row["member_id"]: (int(row["miles"] or 0), int(row["segments"] or 0)) for row in totals}
    at_risk: set[int] = set()
    for member_id, tier, valid_until in rows:
        miles, segments = by_member.get(member_id, (0, 0))
        if engine.is_at_risk(rules, Tier(tier).name, valid_until, today, miles, segments):
            at_risk.add(member_id)
    return at_risk
