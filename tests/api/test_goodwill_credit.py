"""goodwillCredit over HTTP: office, branch and admin staff compensate a member in their
scope with redeemable miles (an ADJUSTMENT entry, no qualifying miles), capped per role
by the rules file (OFFICE 2,000, BRANCH 10,000, ADMIN 50,000), audited and linked to a
feedback item; refusals change nothing; a retry credits once."""

from __future__ import annotations

import pytest

from care.models import GoodwillCredit
from loyalty.jobs import reconcile
from loyalty.models import LedgerEntry
from tests.api.care_factories import ADMIN, NCB, PEK01, submitted
from tests.api.conftest import USER_ERRORS, as_member, data, enroll, error_codes, set_status
from tests.api.loyalty_factories import ENTRY_FIELDS

CREDIT = """mutation($input: GoodwillCreditInput!) { goodwillCredit(input: $input) {
  entry { %s } member { id tier redeemableMiles } feedbackId %s } }""" % (ENTRY_FIELDS, USER_ERRORS)


async def credit(api, member: dict, miles: int, as_=PEK01, reason: str = "delayed baggage", **input) -> dict:
    variables = {"input": {"memberId": member["id"], "miles": miles, "reason": reason, **input}}
    return data(await api.gql(CREDIT, variables, as_=as_))["goodwillCredit"]


def refused(payload: dict) -> list[tuple]:
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def written() -> tuple[int, int]:
    return await LedgerEntry.all().count(), await GoodwillCredit.all().count()


async def test_an_office_compensates_a_complaint_with_redeemable_miles(api):
    member = await enroll(api, "PEK01")
    complaint = await submitted(api, member, kind="COMPLAINT")
    payload = await credit(api, member, 1_500, feedbackId=complaint["id"], reason="  bag  lost on CA1501 ")
    assert payload["userErrors"] == []
    entry = payload["entry"]
    assert (entry["kind"], entry["redeemableMiles"], entry["qualifyingMiles"], entry["qualifyingSegments"]) == (
        "ADJUSTMENT", 1_500, 0, 0
    )
    assert payload["member"] == {"id": member["id"], "tier": "STANDARD", "redeemableMiles": 1_500}
    assert payload["feedbackId"] == complaint["id"]
    (audit,) = await GoodwillCredit.all()
    assert (audit.miles, audit.reason, audit.role, audit.actor, audit.feedback_id) == (
        1_500, "bag lost on CA1501", "OFFICE", "office:office-test@PEK01", int(complaint["id"])
    )
    assert await reconcile() == (1, [])


@pytest.mark.parametrize(("as_", "cap"), [(PEK01, 2_000), (NCB, 10_000), (ADMIN, 50_000)], ids=["office", "branch", "admin"])
async def test_each_role_may_give_up_to_its_cap_and_not_a_mile_more(api, as_, cap):
    member = await enroll(api, "PEK01")
    before = await written()
    assert refused(await credit(api, member, cap + 1, as_=as_)) == [("LIMIT_EXCEEDED", ["input", "miles"])]
    assert await written() == before
    payload = await credit(api, member, cap, as_=as_)
    assert payload["userErrors"] == [] and payload["member"]["redeemableMiles"] == cap


async def test_bad_inputs_and_members_out_of_reach_are_refused_and_write_nothing(api):
    member = await enroll(api, "PEK01")
    other = await enroll(api, "PEK01")
    elsewhere = await enroll(api, "TSN01")
    suspended = await enroll(api, "PEK01")
    await set_status(api, suspended, "SUSPENDED")
    others_complaint = await submitted(api, other, kind="COMPLAINT")
    before = await written()
    assert refused(await credit(api, member, 0)) == [("INVALID", ["input", "miles"])]
    assert refused(await credit(api, member, -500)) == [("INVALID", ["input", "miles"])]
    assert refused(await credit(api, member, 100, reason="   ")) == [("INVALID", ["input", "reason"])]
    assert refused(await credit(api, member, 100, reason="x" * 301)) == [("INVALID", ["input", "reason"])]
    assert refused(await credit(api, elsewhere, 100)) == [("NOT_FOUND", ["input", "memberId"])]
    assert refused(await credit(api, member, 100, feedbackId=others_complaint["id"])) == [("NOT_FOUND", ["input", "feedbackId"])]
    assert refused(await credit(api, member, 100, feedbackId="99999999")) == [("NOT_FOUND", ["input", "feedbackId"])]
    assert refused(await credit(api, suspended, 100)) == [("MEMBER_NOT_ACTIVE", ["input", "memberId"])]
    for role in (as_member(member), ("partner", "HOTELCO"), ("airline",)):
        variables = {"input": {"memberId": member["id"], "miles": 100, "reason": "sorry"}}
        assert error_codes(await api.gql(CREDIT, variables, as_=role)) == ["FORBIDDEN"]
    assert await written() == before


async def test_a_retry_credits_once_and_other_content_under_the_key_is_a_conflict(api):
    member = await enroll(api, "PEK01")
    first = await credit(api, member, 800, idempotencyKey="goodwill-1")
    again = await credit(api, member, 800, idempotencyKey="goodwill-1")
    assert again["entry"]["id"] == first["entry"]["id"] and again["member"]["redeemableMiles"] == 800
    assert refused(await credit(api, member, 900, idempotencyKey="goodwill-1")) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await written() == (1, 1)
