"""memberUpdate: contact details, address re-assignment with history, who may, errors."""

from __future__ import annotations

import pytest

from tests.api.conftest import MEMBER_FIELDS, USER_ERRORS, admin_view, as_member, data, enroll, enroll_payload
from tests.api.conftest import error_codes, office_address, person, problems, set_status

UPDATE = "mutation($input: MemberUpdateInput!) { memberUpdate(input: $input) { member { %s } %s } }" % (
    MEMBER_FIELDS, USER_ERRORS,
)


async def _update(api, member: dict, as_: tuple | None = None, **changes) -> dict:
    result = await api.gql(UPDATE, {"input": {"id": member["id"], **changes}}, as_=as_ or as_member(member))
    return data(result)["memberUpdate"]


async def test_a_member_changes_their_own_phone_and_email(api):
    member = await enroll(api)
    payload = await _update(api, member, phone="+86 138 0000 0099", email="new@example.com")
    assert payload["userErrors"] == []
    after = payload["member"]
    assert (after["phone"], after["email"]) == ("+86 138 0000 0099", "new@example.com")
    assert after["office"] == {"code": "PEK01"}
    assert after["regionHistory"] == member["regionHistory"]
    assert await admin_view(api, member) == after


async def test_omitted_fields_stay_and_null_clears(api):
    member = await enroll(api)
    payload = await _update(api, member, email=None)
    assert payload["userErrors"] == []
    assert (payload["member"]["phone"], payload["member"]["email"]) == (member["phone"], None)
    assert payload["member"]["address"] == member["address"]
    # The cleared email is free for somebody else.
    assert (await enroll(api, email=member["email"]))["email"] == member["email"]


async def test_a_new_address_reassigns_the_office_and_appends_history(api):
    member = await enroll(api, "PEK01")
    moved = await _update(api, member, address=office_address("TVS01"))
    assert moved["userErrors"] == []
    assert (moved["member"]["office"], moved["member"]["branch"]) == ({"code": "TVS01"}, {"code": "NCB"})
    moved = await _update(api, member, address={"country": "CN", "province": "Shanghai", "city": "Shanghai", "line": "8 Century Ave"})
    assert (moved["member"]["office"], moved["member"]["branch"]) == ({"code": "PVG01"}, {"code": "ECB"})
    assert moved["member"]["address"]["line"] == "8 Century Ave"
    assert moved["member"]["regionHistory"] == [
        {"office": {"code": "PEK01"}, "reason": "enrolment"},
        {"office": {"code": "TVS01"}, "reason": "address"},
        {"office": {"code": "PVG01"}, "reason": "address"},
    ]
    # Office scope follows the member.
    query = "query($id: ID) { member(id: $id) { id } }"
    assert data(await api.gql(query, {"id": member["id"]}, as_=("office", "PEK01")))["member"] is None
    assert data(await api.gql(query, {"id": member["id"]}, as_=("office", "PVG01")))["member"] == {"id": member["id"]}


async def test_a_new_address_in_the_same_office_adds_no_history(api):
    member = await enroll(api, "PEK01")
    payload = await _update(api, member, address={**office_address("PEK01"), "line": "2 Wangfujing St", "postalCode": "100006"})
    assert payload["userErrors"] == []
    assert payload["member"]["office"] == {"code": "PEK01"}
    assert payload["member"]["address"]["postalCode"] == "100006"
    assert payload["member"]["regionHistory"] == [{"office": {"code": "PEK01"}, "reason": "enrolment"}]


async def test_an_admin_updates_any_member(api):
    member = await enroll(api, "PVG01")
    payload = await _update(api, member, as_=("admin",), phone="+1 212 555 0100", address=office_address("CAN01"))
    assert payload["userErrors"] == []
    assert payload["member"]["phone"] == "+1 212 555 0100"
    assert payload["member"]["office"] == {"code": "CAN01"}


async def test_a_member_cannot_update_another_member(api):
    me = await enroll(api)
    other = await enroll(api)
    payload = await _update(api, other, as_=as_member(me), phone="+86 138 0000 0077")
    assert payload["member"] is None
    assert problems(payload) == [("NOT_FOUND", ["input", "id"])]
    assert (await admin_view(api, other))["phone"] == other["phone"]


@pytest.mark.parametrize("as_", [("office", "PEK01"), ("branch", "NCB"), ("airline",), ("partner", "HOTEL1")])
async def test_other_roles_are_forbidden(api, as_):
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    member = await enroll(api, "PEK01")
    result = await api.gql(UPDATE, {"input": {"id": member["id"], "phone": "+86 138 0000 0066"}}, as_=as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert (await admin_view(api, member))["phone"] == member["phone"]


# ---- errors -----------------------------------------------------------------------


async def test_phone_or_email_of_another_active_member_is_duplicate(api):
    holder = await enroll(api)
    member = await enroll(api)
    by_phone = await _update(api, member, phone=holder["phone"].replace(" ", ""))
    by_email = await _update(api, member, email=holder["email"].upper())
    assert problems(by_phone) == [("DUPLICATE", ["input", "phone"])]
    assert problems(by_email) == [("DUPLICATE", ["input", "email"])]
    assert await admin_view(api, member) == member


async def test_own_phone_again_and_a_closed_members_phone_are_fine(api):
    closed = await enroll(api)
    await set_status(api, closed, "CLOSED")
    member = await enroll(api)
    assert (await _update(api, member, phone=member["phone"]))["userErrors"] == []
    payload = await _update(api, member, phone=closed["phone"], email=closed["email"])
    assert payload["userErrors"] == []
    assert (payload["member"]["phone"], payload["member"]["email"]) == (closed["phone"], closed["email"])


INVALID_CASES = {
    "bad email": ({"email": "nobody"}, ["input", "email"]),
    "bad phone": ({"phone": "12-34"}, ["input", "phone"]),
    "address removed": ({"address": None}, ["input", "address"]),
    "bad country": ({"address": {"country": "China", "city": "Tangshan"}}, ["input", "address", "country"]),
    "blank city": ({"address": {"country": "CN", "city": ""}}, ["input", "address", "city"]),
    # A valid new address beside a bad email: nothing at all is written.
    "bad email with a new address": ({"email": "x@", "address": {"country": "CN", "province": "Hebei", "city": "Tangshan"}}, ["input", "email"]),
}


@pytest.mark.parametrize("case", list(INVALID_CASES))
async def test_invalid_changes_are_refused_and_nothing_is_written(api, case):
    changes, field = INVALID_CASES[case]
    member = await enroll(api, "PEK01")
    payload = await _update(api, member, **changes)
    assert payload["member"] is None
    assert problems(payload) == [("INVALID", field)]
    assert await admin_view(api, member) == member


async def test_an_unknown_member_is_not_found(api):
    payload = await _update(api, {"id": "999999"}, as_=("admin",), phone="+86 138 0000 0055")
    assert problems(payload) == [("NOT_FOUND", ["input", "id"])]


async def test_a_closed_member_cannot_be_updated(api):
    member = await enroll(api)
    await set_status(api, member, "CLOSED")
    payload = await _update(api, member, as_=("admin",), phone="+86 138 0000 0044")
    assert problems(payload) == [("MEMBER_NOT_ACTIVE", ["input", "id"])]
    assert (await admin_view(api, member))["phone"] == member["phone"]


async def test_a_suspended_member_may_still_update_contact_details(api):
    member = await enroll(api)
    await set_status(api, member, "SUSPENDED")
    payload = await _update(api, member, phone="+86 138 0000 0033")
    assert payload["userErrors"] == []
    assert payload["member"]["phone"] == "+86 138 0000 0033"
    # The new phone is held: a second enrolment with it is DUPLICATE.
    duplicate = await enroll_payload(api, person(phone="+86 138 0000 0033"))
    assert [e["code"] for e in duplicate["userErrors"]] == ["DUPLICATE"]
