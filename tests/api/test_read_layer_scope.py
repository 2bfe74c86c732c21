"""The scoped read layer (schema.reads) against the two leaks found by trying the API
as an attacker would (issue 10): what a payload or a page returns about a member goes
through one visibility rule, so a member that has moved to another office since is
null to the old office (or, for memberEnroll, only the card it enrolled), never its
new phone, email, balance or ledger, and never an "Internal error." that fails the page.

The world: a member enrolled in PEK01 (by PEK01, or by an admin), then moved by an
admin to PVG01 (another branch) with a new phone and email, and credited with a
flight there, so that any leak would show the new details.
"""

from __future__ import annotations

import json

from tests.api.care_factories import CARE_CALL_LOG, PEK01, logged, vip
from tests.api.conftest import ENROLL, USER_ERRORS, data, error_codes, office_address, person
from tests.api.loyalty_factories import ADMIN, loyalty_fly

NEW_PHONE = "+86 139 7777 0001"
NEW_EMAIL = "moved.away@example.com"
FULL = "id cardNumber phone email redeemableMiles ledger { edges { node { id redeemableMiles } } }"
UPDATE = """mutation($input: MemberUpdateInput!) { memberUpdate(input: $input) {
  member { office { code } phone } %s } }""" % USER_ERRORS


async def _move_to_shanghai(api, member_id: str) -> None:
    """An admin moves the member to PVG01 (branch ECB) with new contacts, and the
    member earns miles there."""
    variables = {"input": {"id": member_id, "phone": NEW_PHONE, "email": NEW_EMAIL, "address": office_address("PVG01")}}
    moved = data(await api.gql(UPDATE, variables, as_=ADMIN))["memberUpdate"]
    assert (moved["userErrors"], moved["member"]) == ([], {"office": {"code": "PVG01"}, "phone": NEW_PHONE})
    card = data(await api.gql("query($id: ID) { member(id: $id) { cardNumber } }", {"id": member_id}, as_=ADMIN))
    await loyalty_fly(api, {"id": member_id, "cardNumber": card["member"]["cardNumber"]}, "MU-5101")


def _leaks(result: dict) -> bool:
    text = json.dumps(result.get("data"), ensure_ascii=False)
    return NEW_PHONE in text or NEW_EMAIL in text


# ---- memberEnroll replayed after the member moved -----------------------------------


async def test_a_replayed_enrolment_shows_the_old_office_only_the_card_after_the_member_moved(api):
    input = {**person("PEK01"), "idempotencyKey": "enrol-1"}
    first = data(await api.gql(ENROLL % (FULL, USER_ERRORS), {"input": input}, as_=PEK01))["memberEnroll"]
    assert first["userErrors"] == []
    assert (first["member"]["phone"], first["member"]["redeemableMiles"], first["member"]["ledger"]) == (
        input["phone"], 0, {"edges": []},
    )
    await _move_to_shanghai(api, first["member"]["id"])

    replay = await api.gql(ENROLL % (FULL, USER_ERRORS), {"input": input}, as_=PEK01)

    assert not _leaks(replay)
    assert replay["data"]["memberEnroll"] == {"member": None, "userErrors": []}
    # Refused (phone, email, redeemableMiles, ...: the first non-null one nulls the member), never masked.
    assert set(error_codes(replay)) == {"FORBIDDEN"}
    card = data(await api.gql(ENROLL % ("id cardNumber", USER_ERRORS), {"input": input}, as_=PEK01))["memberEnroll"]
    assert card["member"] == {"id": first["member"]["id"], "cardNumber": first["member"]["cardNumber"]}


async def test_the_admin_replaying_the_same_enrolment_still_sees_everything(api):
    input = {**person("PEK01"), "idempotencyKey": "enrol-admin"}
    first = data(await api.gql(ENROLL % (FULL, USER_ERRORS), {"input": input}, as_=ADMIN))["memberEnroll"]
    await _move_to_shanghai(api, first["member"]["id"])

    replay = data(await api.gql(ENROLL % (FULL, USER_ERRORS), {"input": input}, as_=ADMIN))["memberEnroll"]

    assert (replay["member"]["id"], replay["member"]["phone"], replay["member"]["email"]) == (
        first["member"]["id"], NEW_PHONE, NEW_EMAIL,
    )
    assert replay["member"]["redeemableMiles"] > 0 and len(replay["member"]["ledger"]["edges"]) == 1


# ---- careCallLog replayed after the member moved --------------------------------------

CALL_WITH_MEMBER = CARE_CALL_LOG.replace("member { id cardNumber }", "member { %s }" % FULL)


async def test_a_replayed_care_call_keeps_the_call_but_not_the_member_that_moved_away(api):
    member = await vip(api, "PEK01")
    call = await logged(api, member, PEK01, needs=["aisle seat"], idempotencyKey="call-1")
    assert call["office"] == {"code": "PEK01"}
    await _move_to_shanghai(api, member["id"])

    replay = await api.gql(
        CALL_WITH_MEMBER, {"input": {"memberId": member["id"], "outcome": "REACHED", "needs": ["aisle seat"], "idempotencyKey": "call-1"}},
        as_=PEK01,
    )

    assert "errors" not in replay and not _leaks(replay)
    payload = replay["data"]["careCallLog"]
    assert payload["userErrors"] == []
    assert (payload["careCall"]["id"], payload["careCall"]["office"], payload["careCall"]["member"]) == (
        call["id"], {"code": "PEK01"}, None,
    )


# ---- tierChanges { member } after one of the office's members moved away -------------

CHANGES = """{ tierChanges { edges { node { cardNumber toTier officeCode
  member { id phone email redeemableMiles office { code } } } } } }"""


async def test_an_office_keeps_its_tier_changes_with_a_null_member_after_the_member_moved(api):
    stays = await vip(api, "PEK01", "GOLD")
    leaves = await vip(api, "PEK01", "PLATINUM")
    await _move_to_shanghai(api, leaves["id"])

    result = await api.gql(CHANGES, as_=PEK01)

    assert "errors" not in result and not _leaks(result)
    nodes = [edge["node"] for edge in result["data"]["tierChanges"]["edges"]]
    assert [(n["cardNumber"], n["toTier"], n["officeCode"]) for n in nodes] == [
        (stays["cardNumber"], "GOLD", "PEK01"), (leaves["cardNumber"], "PLATINUM", "PEK01"),
    ]
    assert nodes[0]["member"] == {"id": stays["id"], "phone": stays["phone"], "email": stays["email"],
                                  "redeemableMiles": 0, "office": {"code": "PEK01"}}
    assert nodes[1]["member"] is None
    # The office the member moved to sees the member, not the change of another office's time.
    shanghai = data(await api.gql(CHANGES, as_=("office", "PVG01")))["tierChanges"]["edges"]
    assert shanghai == []
