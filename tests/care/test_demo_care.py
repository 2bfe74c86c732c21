"""The demo's VIP care data (api.demo_care): calls for VIPs with the member's care
columns set as logging them would, feedback with history and some overdue complaints,
segments written by the real refresh job, and nothing added on a second run."""

from __future__ import annotations

from datetime import date, timedelta

from api.demo import build_demo
from care.models import CallOutcome, CareCall, Feedback, FeedbackChange, FeedbackKind, FeedbackStatus
from loyalty.rules import load_rules
from members.enums import Tier, ValueSegment
from members.models import Member

RULES = load_rules()
TODAY = date(2026, 11, 22)


async def test_demo_care_data(db):
    await build_demo(db, 400, rules=RULES, today=TODAY, progress=lambda done, total: None)
    calls = await CareCall.all().values("member_id", "called_at", "outcome", "follow_up_on")
    assert len(calls) > 50
    called = {row["member_id"] for row in calls}
    # Only VIPs are called.
    assert set(await Member.filter(id__in=called).values_list("tier", flat=True)) <= {Tier.SILVER, Tier.GOLD, Tier.PLATINUM}
    # The member row's last contact is the day of its last call that reached the member.
    for member in await Member.filter(id__in=called):
        contacts = [row["called_at"] for row in calls if row["member_id"] == member.id and CallOutcome(row["outcome"]).is_contact]
        expected = max(contacts).astimezone(db.tz).date() if contacts else None
        assert member.care_last_contact_on == expected
    # Some VIPs were never called, some are due again, some are not.
    vips = await Member.filter(tier__gte=Tier.SILVER).values("id", "tier", "care_last_contact_on")
    never = [v for v in vips if v["care_last_contact_on"] is None]
    overdue = [v for v in vips if v["care_last_contact_on"] is not None
               and v["care_last_contact_on"] + timedelta(days=RULES.care.call_interval(Tier(v["tier"]).name)) <= TODAY]
    assert never and overdue and len(never) + len(overdue) < len(vips)

    items = await Feedback.all()
    assert len(items) > 5 and {item.kind for item in items} >= {FeedbackKind.COMPLAINT}
    for item in items:
        history = await FeedbackChange.filter(feedback_id=item.id).order_by("changed_at", "id")
        assert history[0].from_status is None and history[0].to_status is FeedbackStatus.OPEN
        assert history[-1].to_status is item.status
        assert (item.respond_by is not None) == (item.kind is FeedbackKind.COMPLAINT)
        if item.status in (FeedbackStatus.RESOLVED, FeedbackStatus.CLOSED):
            assert item.resolution

    # Segments come from the refresh job: every member refreshed, some HIGH value.
    assert await Member.filter(care_refreshed_on=TODAY).count() == 400
    assert await Member.filter(value_segment=ValueSegment.HIGH).exists()

    counts = (await CareCall.all().count(), await Feedback.all().count(), await FeedbackChange.all().count())
    await build_demo(db, 400, rules=RULES, today=TODAY, progress=lambda done, total: None)
    assert (await CareCall.all().count(), await Feedback.all().count(), await FeedbackChange.all().count()) == counts
