"""memberStatusSet: admin only; suspend, close, re-activate, with a reason; phone and email
are held while ACTIVE or SUSPENDED and freed by CLOSED."""

from __future__ import annotations

import pytest

from tests.api.conftest import USER_ERRORS, admin_view, as_member, data, enroll, enroll_payload, error_codes
from tests.api.conftest import person, problems

STATUS_SET = "mutation($input: MemberStatusSetInput!) { memberStatusSet(input: $input) { member { id status } %s } }" % USER_ERRORS


async def _set_result(api, member: dict, status: str, reason: str = "fraud review", as_: tuple = ("admin",)) -> dict:
    return await api.gql(STATUS_SET, {"input": {"memberId": member["id"], "status": status, "reason": reason}}, as_=as_)


async def _set(api, member: dict, status: str, reason: str = "fraud review") -> dict:
    return data(await _set_result(api, member, status, reason))["memberStatusSet"]


async def _status(api, member: dict) -> str:
    return (await admin_view(api, member, "status"))["status"]


async def test_suspend_and_reactivate(api):
    member = await enroll(api)
    payload = await _set(api, member, "SUSPENDED")
    assert payload == {"member": {"id": member["id"], "status": "SUSPENDED"}, "userErrors": []}
    assert await _status(api, member) == "SUSPENDED"
    payload = await _set(api, member, "ACTIVE", reason="review cleared")
    assert payload == {"member": {"id": member["id"], "status": "ACTIVE"}, "userErrors": []}
    assert await _status(api, member) == "ACTIVE"


async def test_a_suspended_member_keeps_phone_and_email(api):
    member = await enroll(api)
    await _set(api, member, "SUSPENDED")
    duplicate = await enroll_payload(api, person(phone=member["phone"], email=member["email"]))
    assert [e["code"] for e in duplicate["userErrors"]] == ["DUPLICATE"]


async def test_closing_frees_phone_and_email_and_keeps_the_member_readable(api):
    member = await enroll(api)
    assert (await _set(api, member, "CLOSED", reason="member asked to leave"))["member"]["status"] == "CLOSED"
    closed = await admin_view(api, member)
    assert (closed["status"], closed["phone"], closed["email"]) == ("CLOSED", member["phone"], member["email"])
    again = await enroll_payload(api, person(phone=member["phone"], email=member["email"]))
    assert again["userErrors"] == []


async def test_reactivating_a_closed_member_claims_phone_and_email_again(api):
    member = await enroll(api)
    await _set(api, member, "CLOSED")
    assert (await _set(api, member, "ACTIVE", reason="came back"))["member"]["status"] == "ACTIVE"
    duplicate = await enroll_payload(api, person(phone=member["phone"]))
    assert [e["code"] for e in duplicate["userErrors"]] == ["DUPLICATE"]


async def test_reactivating_is_duplicate_when_the_phone_was_taken_meanwhile(api):
    member = await enroll(api)
    await _set(api, member, "CLOSED")
    await enroll(api, phone=member["phone"])
    payload = await _set(api, member, "ACTIVE", reason="came back")
    assert payload["member"] is None
    assert problems(payload) == [("DUPLICATE", ["input", "status"])]
    assert "phone" in payload["userErrors"][0]["message"]
    assert await _status(api, member) == "CLOSED"


TRANSITIONS = [(a, b) for a in ("ACTIVE", "SUSPENDED", "CLOSED") for b in ("ACTIVE", "SUSPENDED", "CLOSED")]


@pytest.mark.parametrize(("start", "target"), TRANSITIONS)
async def test_every_transition_is_allowed_and_setting_the_same_status_is_a_no_op(api, start, target):
    """The contract names no forbidden transition: an admin may suspend, close or
    re-activate from any status."""
    member = await enroll(api)
    if start != "ACTIVE":
        await _set(api, member, start)
    payload = await _set(api, member, target)
    assert payload == {"member": {"id": member["id"], "status": target}, "userErrors": []}
    assert await _status(api, member) == target


@pytest.mark.parametrize("reason", ["", "  ", "x" * 281])
async def test_a_reason_is_required(api, reason):
    member = await enroll(api)
    payload = await _set(api, member, "SUSPENDED", reason=reason)
    assert payload["member"] is None
    assert problems(payload) == [("INVALID", ["input", "reason"])]
    assert await _status(api, member) == "ACTIVE"


@pytest.mark.parametrize("member_id", ["999999", "not-a-number"])
async def test_an_unknown_member_is_not_found(api, member_id):
    payload = await _set(api, {"id": member_id}, "SUSPENDED")
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]


async def test_an_unknown_status_is_refused_before_it_runs(api):
    member = await enroll(api)
    result = await _set_result(api, member, "DELETED")
    assert result.get("data") is None
    assert "DELETED" in result["errors"][0]["message"]
    assert await _status(api, member) == "ACTIVE"


@pytest.mark.parametrize("role", ["member", "partner", "office", "branch", "airline"])
async def test_only_an_admin_sets_a_status(api, role):
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    member = await enroll(api, "PEK01")
    as_ = {
        "member": as_member(member), "partner": ("partner", "HOTEL1"), "office": ("office", "PEK01"),
        "branch": ("branch", "NCB"), "airline": ("airline",),
    }[role]
    assert error_codes(await _set_result(api, member, "SUSPENDED", as_=as_)) == ["FORBIDDEN"]
    assert await _status(api, member) == "ACTIVE"
