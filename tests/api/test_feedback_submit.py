"""feedbackSubmit over HTTP: a member for themselves, staff for a member in scope; routed
to the member's office; a complaint's respondBy; the first history row; validation with
nothing written; roles; idempotency."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.care_factories import (
    ADMIN, FEEDBACK_SUBMIT, NCB, PEK01, PVG01, TSN01, care_rows, feedback_input, instant, submit_payload, submitted,
)
from tests.api.conftest import as_member, enroll, error_codes, problems

NOW = datetime(2026, 3, 2, 1, 30, tzinfo=timezone.utc)


async def test_a_member_complains_for_themselves(clocked_api):
    api = clocked_api
    member = await enroll(api, "PEK01")
    api.clock.now = NOW
    item = (await submit_payload(api, feedback_input(), as_member(member)))["feedback"]
    assert item["kind"] == "COMPLAINT" and item["channel"] == "PHONE"
    assert item["subject"] == "Delayed bag" and item["text"] == "My bag arrived a day late."
    assert item["status"] == "OPEN" and item["resolution"] is None
    assert instant(item["submittedAt"]) == NOW and instant(item["updatedAt"]) == NOW
    assert instant(item["respondBy"]) == NOW + timedelta(hours=48)  # complaint_response_hours
    assert item["overdue"] is False
    assert item["office"] == {"code": "PEK01"} and item["member"] == {"id": member["id"]}
    actor = f"member:{member['id']}"
    assert item["submittedBy"] == actor
    assert [(h["fromStatus"], h["toStatus"], h["note"], h["actor"]) for h in item["history"]] == [(None, "OPEN", None, actor)]
    assert instant(item["history"][0]["changedAt"]) == NOW
    # Naming themselves is the same.
    again = await submitted(api, member, as_member(member), kind="PRAISE", subject="Great crew")
    assert again["respondBy"] is None and again["kind"] == "PRAISE"


async def test_a_member_may_not_submit_for_someone_else(api):
    member, other = await enroll(api, "PEK01"), await enroll(api, "PEK01")
    payload = await submit_payload(api, feedback_input(other), as_member(member))
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]
    assert await care_rows() == (0, 0, 0)


@pytest.mark.parametrize("kind", ["SUGGESTION", "PRAISE", "INQUIRY"])
async def test_only_complaints_have_a_response_time(api, kind):
    member = await enroll(api, "PEK01")
    item = await submitted(api, member, kind=kind, channel="APP")
    assert item["respondBy"] is None and item["overdue"] is False and item["channel"] == "APP"


async def test_staff_submit_for_members_in_their_scope_and_it_goes_to_the_members_office(api):
    pek, tsn, pvg = await enroll(api, "PEK01"), await enroll(api, "TSN01"), await enroll(api, "PVG01")
    assert (await submitted(api, pek, PEK01))["office"] == {"code": "PEK01"}
    item = await submitted(api, tsn, NCB, channel="COUNTER")
    assert item["office"] == {"code": "TSN01"} and item["submittedBy"] == "branch:branch-test@NCB"
    assert (await submitted(api, pvg, ADMIN))["office"] == {"code": "PVG01"}
    for member, as_ in ((tsn, PEK01), (pek, TSN01), (pvg, NCB), ({"id": "12345678"}, ADMIN), ({"id": "x"}, ADMIN)):
        assert problems(await submit_payload(api, feedback_input(member), as_)) == [("NOT_FOUND", ["input", "memberId"])]
    assert (await submitted(api, pvg, PVG01))["office"] == {"code": "PVG01"}
    assert await care_rows() == (0, 4, 4)


async def test_staff_must_name_the_member(api):
    payload = await submit_payload(api, feedback_input(), PEK01)
    assert problems(payload) == [("INVALID", ["input", "memberId"])]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "   "}, "subject"),
        ({"subject": "s" * 201}, "subject"),
        ({"text": ""}, "text"),
        ({"text": " \n "}, "text"),
        ({"text": "t" * 5001}, "text"),
        ({"idempotencyKey": "k" * 129}, "idempotencyKey"),
    ],
)
async def test_bad_subject_or_text_is_refused_and_nothing_is_written(api, fields, field):
    member = await enroll(api, "PEK01")
    payload = await submit_payload(api, feedback_input(member, **fields), PEK01)
    assert payload["feedback"] is None
    assert problems(payload) == [("INVALID", ["input", field])]
    assert await care_rows() == (0, 0, 0)


async def test_subject_of_200_and_text_of_5000_characters_are_kept_trimmed(api):
    member = await enroll(api, "PEK01")
    text = "line one\n" + "t" * 4991
    item = await submitted(api, member, subject="  " + "s" * 100 + "   " + "s" * 99 + " ", text=f"\n {text} \n")
    assert item["subject"] == "s" * 100 + " " + "s" * 99
    assert item["text"] == text and len(text) == 5000


@pytest.mark.parametrize("as_", [("airline",), ("partner", "HOTELCO"), None])
async def test_other_roles_may_not_submit(api, as_):
    member = await enroll(api, "PEK01")
    result = await api.gql(FEEDBACK_SUBMIT, {"input": feedback_input(member)}, as_=as_)
    assert error_codes(result) == ["FORBIDDEN" if as_ else "UNAUTHENTICATED"]
    assert await care_rows() == (0, 0, 0)


async def test_idempotency_key_replays_and_refuses_other_content(api):
    member = await enroll(api, "PEK01")
    first = await submitted(api, member, idempotencyKey="fb-1")
    again = await submitted(api, member, idempotencyKey="fb-1")
    assert again["id"] == first["id"]
    other = await submit_payload(api, feedback_input(member, subject="Lost bag", idempotencyKey="fb-1"), PEK01)
    assert problems(other) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await care_rows() == (0, 1, 1)
