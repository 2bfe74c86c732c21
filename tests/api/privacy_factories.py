"""Shared set-up for the personal-data tests: a member with a row in every table that
refers to a member (privacy.export.SECTIONS), with distinctive personal values, and
the export and erasure over HTTP."""

from __future__ import annotations

from datetime import timedelta

from tests.api.care_factories import ADMIN, PEK01, logged, submitted, update_payload
from tests.api.conftest import USER_ERRORS, as_member, data, enroll, set_status, set_tier
from tests.api.loyalty_factories import loyalty_flight, loyalty_fly, loyalty_today

EXPORT = "query($id: ID) { memberDataExport(memberId: $id) }"
ERASE = """mutation($input: MemberEraseInput!) { memberErase(input: $input) {
  member { id cardNumber familyName givenName status phone email birthDate address { city } erasedAt redeemableMiles tier
           consents { greetings marketing } }
  erasure { erasedAt erasedBy reason } %s } }""" % USER_ERRORS
CONSENT_SET = """mutation($input: MemberConsentSetInput!) { memberConsentSet(input: $input) {
  member { id consents { greetings marketing updatedAt } } %s } }""" % USER_ERRORS
PASSWORD = "mutation($input: MemberPasswordSetInput!) { memberPasswordSet(input: $input) { member { id } %s } }" % USER_ERRORS
SIGN_IN = """mutation($input: MemberSignInInput!) { memberSignIn(input: $input) {
  session { accessToken refreshToken } %s } }""" % USER_ERRORS
CLAIM = "mutation($input: MilesClaimSubmitInput!) { milesClaimSubmit(input: $input) { claim { id } %s } }" % USER_ERRORS
GREETING = "mutation($input: GreetingMarkSentInput!) { greetingMarkSent(input: $input) { greeting { sentAt } %s } }" % USER_ERRORS
GOODWILL = "mutation($input: GoodwillCreditInput!) { goodwillCredit(input: $input) { entry { id } %s } }" % USER_ERRORS
ASSIGN = "mutation($input: MemberRegionAssignInput!) { memberRegionAssign(input: $input) { member { id } %s } }" % USER_ERRORS
SECRET = "correct horse battery"


def ok(result: dict, name: str) -> dict:
    payload = data(result)[name]
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def export(api, member: dict | None = None, as_: tuple = ADMIN) -> dict | None:
    """memberDataExport of `member` (omitted: the caller's own)."""
    return data(await api.gql(EXPORT, {"id": member["id"] if member else None}, as_=as_))["memberDataExport"]


async def erase(api, member: dict, reason: str = "request PRV-1", as_: tuple = ADMIN) -> dict:
    return data(await api.gql(ERASE, {"input": {"memberId": member["id"], "reason": reason}}, as_=as_))["memberErase"]


async def set_consents(api, as_: tuple, **input) -> dict:
    return data(await api.gql(CONSENT_SET, {"input": input}, as_=as_))["memberConsentSet"]


async def member_with_everything(api, tag: str, birth_date: str = "1980-06-15") -> tuple[dict, dict]:
    """A PEK01 member whose names, contacts and texts all carry `tag`, with a row in
    every table about a member; (the member, the refresh token of its sign-in)."""
    member = await enroll(
        api, "PEK01", familyName=f"Fam{tag}", givenName=f"Giv{tag}", birthDate=birth_date,
        email=f"{tag.lower()}@example.com", idempotencyKey=f"enrol-{birth_date}",
        address={"country": "CN", "city": "Beijing", "line": f"{tag} Road 1", "postalCode": "100000"},
    )
    member_id = member["id"]
    ok(await api.gql(PASSWORD, {"input": {"memberId": member_id, "newPassword": SECRET}}, as_=ADMIN), "memberPasswordSet")
    session = ok(await api.gql(SIGN_IN, {"input": {"login": member["cardNumber"], "password": SECRET}}), "memberSignIn")
    await set_status(api, member, "SUSPENDED")
    await set_status(api, member, "ACTIVE")
    ok(await api.gql(ASSIGN, {"input": {"memberId": member_id, "officeCode": "PEK01", "reason": "desk check"}}, as_=ADMIN),
       "memberRegionAssign")
    assert (await set_consents(api, as_member(member), marketing=True))["userErrors"] == []
    await loyalty_fly(api, member, f"flight-{member['cardNumber']}")  # ledger entry, credit lot
    await set_tier(api, member, "GOLD")  # tier event
    flight = loyalty_flight(loyalty_today(api) - timedelta(days=10), 1000, "J")
    ok(await api.gql(CLAIM, {"input": {"flight": flight}}, as_=as_member(member)), "milesClaimSubmit")
    await logged(api, member, notes=f"Called {tag}, wants a window seat", needs=[f"Window seat {tag}"],
                 idempotencyKey=f"call-{member_id}")
    complaint = await submitted(api, member, subject=f"Bag of {tag}", text=f"{tag}'s bag was late", idempotencyKey=f"fb-{member_id}")
    resolved = await update_payload(api, complaint, "RESOLVED", resolution=f"Paid {tag}", note=f"Spoke to {tag}")
    assert resolved["userErrors"] == [], resolved["userErrors"]
    ok(await api.gql(GOODWILL, {"input": {"memberId": member_id, "miles": 500, "reason": "late bag",
                                          "feedbackId": complaint["id"]}}, as_=PEK01), "goodwillCredit")
    day = f"{loyalty_today(api).year}{birth_date[4:]}"
    ok(await api.gql(GREETING, {"input": {"kind": "BIRTHDAY", "date": day, "memberId": member_id}}, as_=PEK01),
       "greetingMarkSent")
    return member, session["session"]
