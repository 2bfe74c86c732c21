"""feedbackUpdate over HTTP: every transition allowed or refused (INVALID_TRANSITION,
nothing written), RESOLVED needs a resolution, history rows with note and actor, scope
and roles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from care.models import FeedbackStatus
from tests.api.care_factories import (
    ADMIN, FEEDBACK_UPDATE, NCB, PEK01, TSN01, care_rows, instant, submitted, update_payload,
)
from tests.api.conftest import as_member, enroll, error_codes, problems

ALLOWED = {
    "OPEN": {"IN_PROGRESS", "RESOLVED", "CLOSED"},
    "IN_PROGRESS": {"RESOLVED", "CLOSED"},
    "RESOLVED": {"IN_PROGRESS", "CLOSED"},
    "CLOSED": set(),
}
# How to bring a new (OPEN) item to each status.
PATH = {"OPEN": [], "IN_PROGRESS": ["IN_PROGRESS"], "RESOLVED": ["RESOLVED"], "CLOSED": ["CLOSED"]}


def extra(status: str) -> dict:
    return {"resolution": "Bag delivered; 2,000 miles credited."} if status == "RESOLVED" else {}


async def at_status(api, status: str) -> dict:
    member = await enroll(api, "PEK01")
    item = await submitted(api, member)
    for step in PATH[status]:
        payload = await update_payload(api, item, step, **extra(step))
        assert payload["userErrors"] == [], payload["userErrors"]
        item = payload["feedback"]
    return item


@pytest.mark.parametrize(
    ("start", "target"), [(s, t) for s in ALLOWED for t in (x.value for x in FeedbackStatus)]
)
async def test_transitions(api, start, target):
    item = await at_status(api, start)
    before = await care_rows()
    payload = await update_payload(api, item, target, note="checked", **extra(target))
    if target in ALLOWED[start]:
        assert payload["userErrors"] == []
        assert payload["feedback"]["status"] == target
        assert await care_rows() == (before[0], before[1], before[2] + 1)
        last = payload["feedback"]["history"][-1]
        assert (last["fromStatus"], last["toStatus"], last["note"]) == (start, target, "checked")
    else:
        assert payload["feedback"] is None
        assert problems(payload) == [("INVALID_TRANSITION", ["input", "status"])]
        assert await care_rows() == before


async def test_the_transition_table_is_the_documented_one():
    from care.feedback import TRANSITIONS

    assert {s.value: {t.value for t in targets} for s, targets in TRANSITIONS.items()} == ALLOWED


async def test_a_complaint_handled_from_open_to_closed_keeps_its_history(clocked_api):
    api = clocked_api
    member = await enroll(api, "PEK01")
    t0 = datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)
    api.clock.now = t0
    item = await submitted(api, member, as_member(member))
    api.clock.now = t1 = t0 + timedelta(hours=3)
    item = (await update_payload(api, item, "IN_PROGRESS", PEK01, note="  Called the airport.  "))["feedback"]
    assert instant(item["updatedAt"]) == t1
    api.clock.now = t2 = t0 + timedelta(hours=20)
    item = (await update_payload(api, item, "RESOLVED", NCB, resolution="  Bag delivered.  ", note="Done"))["feedback"]
    assert item["resolution"] == "Bag delivered." and instant(item["updatedAt"]) == t2
    api.clock.now = t3 = t0 + timedelta(days=3)
    item = (await update_payload(api, item, "IN_PROGRESS", ADMIN, note="Member says one bag is still missing"))["feedback"]
    assert item["resolution"] is None  # reopened: no answer stands
    assert item["overdue"] is True  # 72 hours after submission, unanswered again
    item = (await update_payload(api, item, "RESOLVED", PEK01, resolution="Second bag found."))["feedback"]
    item = (await update_payload(api, item, "CLOSED", PEK01))["feedback"]
    assert item["status"] == "CLOSED" and item["resolution"] == "Second bag found." and item["overdue"] is False
    member_actor = f"member:{member['id']}"
    assert [(h["fromStatus"], h["toStatus"], h["note"], h["actor"]) for h in item["history"]] == [
        (None, "OPEN", None, member_actor),
        ("OPEN", "IN_PROGRESS", "Called the airport.", "office:office-test@PEK01"),
        ("IN_PROGRESS", "RESOLVED", "Done", "branch:branch-test@NCB"),
        ("RESOLVED", "IN_PROGRESS", "Member says one bag is still missing", "admin:admin-test"),
        ("IN_PROGRESS", "RESOLVED", None, "office:office-test@PEK01"),
        ("RESOLVED", "CLOSED", None, "office:office-test@PEK01"),
    ]
    assert [instant(h["changedAt"]) for h in item["history"]][:4] == [t0, t1, t2, t3]


@pytest.mark.parametrize(
    ("status", "fields", "field"),
    [
        ("RESOLVED", {}, "resolution"),
        ("RESOLVED", {"resolution": "   "}, "resolution"),
        ("RESOLVED", {"resolution": "r" * 5001}, "resolution"),
        ("IN_PROGRESS", {"resolution": "Bag delivered."}, "resolution"),
        ("CLOSED", {"resolution": "Bag delivered."}, "resolution"),
        ("IN_PROGRESS", {"note": "n" * 2001}, "note"),
    ],
)
async def test_bad_resolution_or_note_is_refused_and_nothing_is_written(api, status, fields, field):
    item = await at_status(api, "OPEN")
    before = await care_rows()
    payload = await update_payload(api, item, status, **fields)
    assert problems(payload) == [("INVALID", ["input", field])]
    assert await care_rows() == before


async def test_scope_office_branch_admin_and_unknown_ids(api):
    item = await at_status(api, "OPEN")
    for as_, feedback_id in ((TSN01, item["id"]), (("branch", "ECB"), item["id"]), (ADMIN, "987654321"), (ADMIN, "abc")):
        payload = await update_payload(api, {"id": feedback_id}, "IN_PROGRESS", as_)
        assert problems(payload) == [("NOT_FOUND", ["input", "id"])]
    assert (await update_payload(api, item, "IN_PROGRESS", NCB))["userErrors"] == []
    assert (await update_payload(api, item, "CLOSED", ADMIN))["userErrors"] == []


@pytest.mark.parametrize("role", ["member", ("airline",), ("partner", "HOTELCO")])
async def test_members_and_other_roles_may_not_update(api, role):
    member = await enroll(api, "PEK01")
    item = await submitted(api, member, as_member(member))
    as_ = as_member(member) if role == "member" else role
    result = await api.gql(FEEDBACK_UPDATE, {"input": {"id": item["id"], "status": "CLOSED"}}, as_=as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert await care_rows() == (0, 1, 1)
