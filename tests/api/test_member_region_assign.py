"""memberRegionAssign: branch staff within their branch, admin anywhere, with a reason and history."""

from __future__ import annotations

import pytest

from tests.api.conftest import MEMBER_FIELDS, USER_ERRORS, admin_view, as_member, data, enroll, error_codes
from tests.api.conftest import office_address, problems

ASSIGN = "mutation($input: MemberRegionAssignInput!) { memberRegionAssign(input: $input) { member { %s } %s } }" % (
    MEMBER_FIELDS, USER_ERRORS,
)


async def _assign_result(api, member: dict, office_code: str, reason: str = "VIP asked for the Tangshan desk", as_: tuple = ("branch", "NCB")) -> dict:
    return await api.gql(ASSIGN, {"input": {"memberId": member["id"], "officeCode": office_code, "reason": reason}}, as_=as_)


async def _assign(api, member: dict, office_code: str, reason: str = "VIP asked for the Tangshan desk", as_: tuple = ("branch", "NCB")) -> dict:
    return data(await _assign_result(api, member, office_code, reason, as_))["memberRegionAssign"]


async def test_branch_staff_assign_within_their_branch_with_history(api):
    member = await enroll(api, "PEK01")
    payload = await _assign(api, member, "TVS01", reason="  VIP asked for   the Tangshan desk ")
    assert payload["userErrors"] == []
    assert (payload["member"]["office"], payload["member"]["branch"]) == ({"code": "TVS01"}, {"code": "NCB"})
    assert payload["member"]["address"] == member["address"]  # the address is not touched
    assert payload["member"]["regionHistory"] == [
        {"office": {"code": "PEK01"}, "reason": "enrolment"},
        {"office": {"code": "TVS01"}, "reason": "manual: VIP asked for the Tangshan desk"},
    ]
    assert await admin_view(api, member) == payload["member"]


async def test_office_scope_follows_the_assignment(api):
    member = await enroll(api, "PEK01")
    await _assign(api, member, "TVS01")
    query = "query($id: ID) { member(id: $id) { id } }"
    assert data(await api.gql(query, {"id": member["id"]}, as_=("office", "PEK01")))["member"] is None
    assert data(await api.gql(query, {"id": member["id"]}, as_=("office", "TVS01")))["member"] == {"id": member["id"]}


async def test_office_code_is_case_insensitive(api):
    member = await enroll(api, "PEK01")
    payload = await _assign(api, member, " tvs01 ")
    assert payload["member"]["office"] == {"code": "TVS01"}


async def test_branch_staff_may_not_assign_outside_their_branch(api):
    member = await enroll(api, "PEK01")
    result = await _assign_result(api, member, "PVG01")
    assert error_codes(result) == ["FORBIDDEN"]
    assert await admin_view(api, member) == member


async def test_branch_staff_naming_an_unknown_office_is_forbidden(api):
    member = await enroll(api, "PEK01")
    assert error_codes(await _assign_result(api, member, "ZZZ99")) == ["FORBIDDEN"]
    assert await admin_view(api, member) == member


async def test_a_member_of_another_branch_is_not_found_for_branch_staff(api):
    member = await enroll(api, "PVG01")
    payload = await _assign(api, member, "TVS01")
    assert payload["member"] is None
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]
    assert await admin_view(api, member) == member


async def test_admin_assigns_anywhere(api):
    member = await enroll(api, "PEK01")
    payload = await _assign(api, member, "PVG01", reason="moved to Shanghai for work", as_=("admin",))
    assert payload["userErrors"] == []
    assert (payload["member"]["office"], payload["member"]["branch"]) == ({"code": "PVG01"}, {"code": "ECB"})
    assert payload["member"]["regionHistory"][-1] == {"office": {"code": "PVG01"}, "reason": "manual: moved to Shanghai for work"}


async def test_admin_naming_an_unknown_office_gets_not_found(api):
    member = await enroll(api, "PEK01")
    payload = await _assign(api, member, "ZZZ99", as_=("admin",))
    assert problems(payload) == [("NOT_FOUND", ["input", "officeCode"])]
    assert await admin_view(api, member) == member


async def test_an_unknown_member_is_not_found(api):
    payload = await _assign(api, {"id": "999999"}, "TVS01", as_=("admin",))
    assert problems(payload) == [("NOT_FOUND", ["input", "memberId"])]


@pytest.mark.parametrize("reason", ["", "   ", "x" * 281])
async def test_a_reason_is_required(api, reason):
    member = await enroll(api, "PEK01")
    payload = await _assign(api, member, "TVS01", reason=reason)
    assert problems(payload) == [("INVALID", ["input", "reason"])]
    assert await admin_view(api, member) == member


async def test_a_later_address_change_reassigns_by_the_address_rules(api):
    member = await enroll(api, "PEK01")
    await _assign(api, member, "TVS01")
    update = "mutation($input: MemberUpdateInput!) { memberUpdate(input: $input) { member { regionHistory { office { code } reason } } } }"
    result = await api.gql(update, {"input": {"id": member["id"], "address": office_address("SJW01")}}, as_=as_member(member))
    assert [(h["office"]["code"], h["reason"]) for h in data(result)["memberUpdate"]["member"]["regionHistory"]] == [
        ("PEK01", "enrolment"), ("TVS01", "manual: VIP asked for the Tangshan desk"), ("SJW01", "address"),
    ]


@pytest.mark.parametrize("role", ["office", "airline", "partner", "member"])
async def test_other_roles_are_forbidden(api, role):
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    member = await enroll(api, "PEK01")
    as_ = {"office": ("office", "PEK01"), "airline": ("airline",), "partner": ("partner", "HOTEL1"), "member": as_member(member)}[role]
    assert error_codes(await _assign_result(api, member, "TVS01", as_=as_)) == ["FORBIDDEN"]
    assert await admin_view(api, member) == member
