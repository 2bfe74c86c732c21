"""VIP care in the demo data (issue 6): care calls, feedback, lifecycle stages and
value segments for the members `api.demo` created.

Reproducible like the members: each member's calls and feedback come from its own
random stream (SEED and member id). Written straight to the tables in one
transaction, the member's care columns set as `care.calls` would set them:
care_last_contact_on is the day of the last call that reached the member,
care_follow_up_on the follow-up the last call asked for. A member that already has
demo calls or feedback gets none added, so running the demo again adds nothing. The
lifecycle stages and value segments are then written by the real job
(`care.segments.refresh_segments`, what `loyalty care refresh` runs).
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta, timezone, tzinfo

from tortoise.transactions import in_transaction

from care.models import CallOutcome, CareCall, Feedback, FeedbackChange, FeedbackChannel, FeedbackKind, FeedbackStatus
from care.segments import refresh_segments
from loyalty.rules import Rules
from members.enums import MemberStatus, Tier
from members.models import Member

CARE_SEED = "loyalty-demo-care-1"
CALL_ACTOR = "office:demo-staff"
CHUNK = 500

_NEEDS = (
    "Window seat on long-haul flights", "Vegetarian meal", "Lounge access for a companion",
    "Upgrade offer on PEK-LAX", "Invoice for company travel", "Family miles pooling",
    "Wheelchair assistance at transfer", "Faster baggage at PEK T3", "Hotel partner in Chengdu",
    "Quieter cabin on red-eye flights", "Birthday upgrade voucher", "Online check-in for group bookings",
)
_NOTES = (
    "Thanked for loyalty; happy with the service.", "Asked about next year's tier renewal.",
    "Mentioned a delayed bag last month.", "Interested in the new Beijing-Madrid route.",
    "Prefers WeChat messages to calls.", "Travels mostly for business, Mon-Thu.",
)
_FEEDBACK = {
    FeedbackKind.COMPLAINT: (("Delayed baggage", "My bag arrived a day late at PVG and nobody called me."),
                             ("Missing miles", "Miles for my flight last month have not been credited."),
                             ("Rude staff at check-in", "The counter staff were impatient with my elderly mother.")),
    FeedbackKind.SUGGESTION: (("More vegetarian options", "Please offer more vegetarian meals on domestic flights."),
                              ("App check-in", "Let me check in my whole family from the app.")),
    FeedbackKind.PRAISE: (("Great crew on CA981", "The cabin crew looked after my child wonderfully."),
                          ("Smooth transfer", "The transfer desk at PEK rebooked me in minutes.")),
    FeedbackKind.INQUIRY: (("Tier validity", "When does my Gold card expire if I fly less this year?"),
                           ("Partner miles", "Can I earn miles with the demo hotel partner abroad?")),
}
_KIND_WEIGHTS = ((FeedbackKind.COMPLAINT, 40), (FeedbackKind.SUGGESTION, 25), (FeedbackKind.PRAISE, 15), (FeedbackKind.INQUIRY, 20))


def _at(day: date, hour: int, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(timezone.utc)


def _calls(rng: random.Random, member: dict, rules: Rules, today: date, tz: tzinfo) -> tuple[list[CareCall], date | None, date | None]:
    """A VIP's calls: some never called, others last reached up to two intervals ago
    (so about half are due again), a few unanswered tries after the last contact, and
    now and then a follow-up date. Returns the calls, last contact day and follow-up."""
    if rng.random() < 0.15:
        return [], None, None
    interval = rules.care.call_interval(Tier(member["tier"]).name) or 90
    first_day = max(member["tier_since"], member["enrolled_at"].astimezone(tz).date())
    span = (today - first_day).days
    if span < 1:
        return [], None, None
    last_contact = today - timedelta(days=rng.randint(0, min(span, 2 * interval)))
    days = sorted({last_contact - timedelta(days=interval * k + rng.randint(0, 10)) for k in range(rng.randint(0, 2))})
    days = [day for day in days if day >= first_day and day < last_contact] + [last_contact]
    calls = []
    for day in days:
        outcome = CallOutcome.DECLINED if rng.random() < 0.05 else CallOutcome.REACHED
        needs = rng.sample(_NEEDS, rng.randint(0, 2)) if outcome is CallOutcome.REACHED else []
        calls.append((day, outcome, rng.choice(_NOTES) if outcome is CallOutcome.REACHED else None, needs))
    if rng.random() < 0.15 and last_contact < today:
        tried = last_contact + timedelta(days=rng.randint(1, (today - last_contact).days))
        calls.append((tried, rng.choice((CallOutcome.NO_ANSWER, CallOutcome.WRONG_NUMBER)), None, []))
    follow_up = None
    if rng.random() < 0.12:
        follow_up = max(last_contact + timedelta(days=1), today + timedelta(days=rng.randint(-10, 30)))
    rows = [
        CareCall(member_id=member["id"], office_id=member["office_id"], branch_id=member["branch_id"],
                 called_at=_at(day, rng.randint(9, 17), tz), outcome=outcome, notes=notes, needs=needs,
                 follow_up_on=follow_up if day == last_contact else None, actor=CALL_ACTOR)
        for day, outcome, notes, needs in calls
    ]
    return rows, last_contact, follow_up


def _feedback(rng: random.Random, member: dict, rules: Rules, now: datetime) -> tuple[Feedback, list[FeedbackChange]]:
    """One feedback item of the last 60 days: the older, the likelier it is settled; some
    complaints are left open past their response time (overdue)."""
    kind = rng.choices([k for k, _ in _KIND_WEIGHTS], [w for _, w in _KIND_WEIGHTS])[0]
    subject, text = rng.choice(_FEEDBACK[kind])
    submitted = now - timedelta(hours=rng.randint(1, 60 * 24))
    age_days = (now - submitted).days
    if kind is FeedbackKind.COMPLAINT and rng.random() < 0.25:
        path = [FeedbackStatus.OPEN] if rng.random() < 0.5 else [FeedbackStatus.OPEN, FeedbackStatus.IN_PROGRESS]
    elif age_days > 7:
        path = [FeedbackStatus.OPEN, FeedbackStatus.IN_PROGRESS, FeedbackStatus.RESOLVED] + ([FeedbackStatus.CLOSED] if rng.random() < 0.6 else [])
    else:
        path = [FeedbackStatus.OPEN] + ([FeedbackStatus.IN_PROGRESS] if rng.random() < 0.5 else [])
    respond_by = submitted + timedelta(hours=rules.care.complaint_response_hours) if kind is FeedbackKind.COMPLAINT else None
    resolution = "Explained and apologised; 2,000 goodwill miles offered." if FeedbackStatus.RESOLVED in path else None
    submitter = rng.choice(("member", "office"))
    item = Feedback(
        member_id=member["id"], office_id=member["office_id"], branch_id=member["branch_id"], kind=kind,
        channel=rng.choice(list(FeedbackChannel)), subject=subject, text=text, status=path[-1], resolution=resolution,
        submitted_at=submitted, respond_by=respond_by, updated_at=submitted,
        submitted_by=f"member:{member['id']}" if submitter == "member" else CALL_ACTOR,
    )
    changes, at, previous = [], submitted, None
    for status in path:
        note = resolution if status is FeedbackStatus.RESOLVED else None
        changes.append(FeedbackChange(from_status=previous, to_status=status, note=note,
                                      actor=item.submitted_by if previous is None else CALL_ACTOR, changed_at=at))
        previous = status
        at = min(now, at + timedelta(hours=rng.randint(2, 72)))
    item.updated_at = changes[-1].changed_at
    return item, changes


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


async def _untouched_members() -> list[dict]:
    """Active members with no care calls and no feedback yet, with what the generators need."""
    touched = set(await CareCall.all().distinct().values_list("member_id", flat=True))
    touched |= set(await Feedback.all().distinct().values_list("member_id", flat=True))
    rows = await Member.filter(status=MemberStatus.ACTIVE).order_by("id").values(
        "id", "tier", "office_id", "branch_id", "tier_since", "enrolled_at")
    return [row for row in rows if row["id"] not in touched]


async def build_demo_care(rules: Rules, today: date, tz: tzinfo, progress: Callable[[int, int], None]) -> str:
    """Add calls and feedback for demo members that have none, refresh lifecycle stages and
    value segments, and return a one-line summary."""
    members = await _untouched_members()
    now = _at(today, 12, tz)
    calls: list[CareCall] = []
    contacts: dict[date, list[int]] = defaultdict(list)
    follow_ups: dict[date, list[int]] = defaultdict(list)
    items: list[tuple[Feedback, list[FeedbackChange]]] = []
    for member in members:
        rng = random.Random(f"{CARE_SEED}-{member['id']}")
        if member["tier"] >= Tier.SILVER:
            rows, last_contact, follow_up = _calls(rng, member, rules, today, tz)
            calls.extend(rows)
            if last_contact is not None:
                contacts[last_contact].append(member["id"])
            if follow_up is not None:
                follow_ups[follow_up].append(member["id"])
        if rng.random() < 0.06:
            items.append(_feedback(rng, member, rules, now))
    async with in_transaction():
        for chunk in _chunks(calls):
            await CareCall.bulk_create(chunk)
        for day, ids in contacts.items():
            for chunk in _chunks(ids):
                await Member.filter(id__in=chunk).update(care_last_contact_on=day)
        for day, ids in follow_ups.items():
            for chunk in _chunks(ids):
                await Member.filter(id__in=chunk).update(care_follow_up_on=day)
        for item, changes in items:
            await item.save()
            for change in changes:
                change.feedback_id = item.id
            await FeedbackChange.bulk_create(changes)
    refreshed = await refresh_segments(rules, today, progress, timezone=tz)
    stages = ", ".join(f"{stage.value} {count:,}" for stage, count in refreshed.stages.items())
    return (f"  care: {len(calls):,} care calls and {len(items):,} feedback items added; "
            f"lifecycle stages {stages}")
