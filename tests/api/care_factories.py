"""Shared set-up for the care API tests: VIP members, logging calls and submitting
feedback over HTTP, and the member's care columns as the database holds them."""

from __future__ import annotations

from datetime import date, datetime

from tortoise.transactions import in_transaction

from api.settings import load_settings
from care.models import CareCall, Feedback, FeedbackChange
from loyalty.changes import members_changed
from loyalty.rules import load_rules
from members.models import Member
from tests.api.conftest import USER_ERRORS, data, enroll, set_tier

CALL_FIELDS = """id calledAt outcome notes needs followUpOn actor satisfaction office { code } member { id cardNumber }"""
CARE_CALL_LOG = """mutation($input: CareCallLogInput!) { careCallLog(input: $input) { careCall { %s } %s } }""" % (
    CALL_FIELDS, USER_ERRORS)

FEEDBACK_FIELDS = """id kind channel subject text status resolution submittedAt respondBy updatedAt overdue submittedBy satisfaction
  office { code } member { id } history { fromStatus toStatus note actor changedAt }"""
FEEDBACK_SUBMIT = """mutation($input: FeedbackSubmitInput!) { feedbackSubmit(input: $input) { feedback { %s } %s } }""" % (
    FEEDBACK_FIELDS, USER_ERRORS)
FEEDBACK_UPDATE = """mutation($input: FeedbackUpdateInput!) { feedbackUpdate(input: $input) { feedback { %s } %s } }""" % (
    FEEDBACK_FIELDS, USER_ERRORS)

PEK01 = ("office", "PEK01")
TSN01 = ("office", "TSN01")  # PEK01's branch (NCB)
PVG01 = ("office", "PVG01")  # another branch (ECB)
NCB = ("branch", "NCB")
ECB = ("branch", "ECB")
ADMIN = ("admin",)


async def vip(api, office: str = "PEK01", tier: str = "GOLD", **input) -> dict:
    """A member of `office` given `tier` today by an admin override."""
    member = await enroll(api, office, **input)
    await set_tier(api, member, tier)
    return member


async def log_call(api, member: dict, as_: tuple = PEK01, outcome: str = "REACHED", **input) -> dict:
    """The careCallLog payload for a call to `member`."""
    variables = {"input": {"memberId": member["id"], "outcome": outcome, **input}}
    return data(await api.gql(CARE_CALL_LOG, variables, as_=as_))["careCallLog"]


async def logged(api, member: dict, as_: tuple = PEK01, outcome: str = "REACHED", **input) -> dict:
    """A call that must be accepted; the CareCall."""
    payload = await log_call(api, member, as_, outcome, **input)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["careCall"]


async def care_columns(member: dict) -> tuple[date | None, date | None]:
    """(care_last_contact_on, care_follow_up_on) of the member row."""
    row = await Member.get(id=int(member["id"]))
    return row.care_last_contact_on, row.care_follow_up_on


async def set_care(member: dict, **columns) -> None:
    """Write care columns (or tier dates) of a member row directly, then what the row
    keeps from them, as every writer does (loyalty.changes.members_changed), as of the
    programme's today. A tier_since given alone stands for a tier recorded that day too
    (tier_recorded_on), as if it had been reached then."""
    if "tier_since" in columns:
        columns.setdefault("tier_recorded_on", columns["tier_since"])
    await Member.filter(id=int(member["id"])).update(**columns)
    today = datetime.now(load_settings(environ={}, dotenv=None).tz).date()
    async with in_transaction() as connection:
        await members_changed(connection, [int(member["id"])], load_rules(), today)


async def care_rows() -> tuple[int, int, int]:
    """How many care calls, feedback items and feedback changes exist."""
    return await CareCall.all().count(), await Feedback.all().count(), await FeedbackChange.all().count()


def feedback_input(member: dict | None = None, **fields) -> dict:
    value = {"kind": "COMPLAINT", "channel": "PHONE", "subject": "Delayed bag", "text": "My bag arrived a day late."}
    if member is not None:
        value["memberId"] = member["id"]
    value.update(fields)
    return value


async def submit_payload(api, input: dict, as_: tuple = PEK01) -> dict:
    return data(await api.gql(FEEDBACK_SUBMIT, {"input": input}, as_=as_))["feedbackSubmit"]


async def submitted(api, member: dict, as_: tuple = PEK01, **fields) -> dict:
    """Feedback that must be accepted; the Feedback."""
    payload = await submit_payload(api, feedback_input(member, **fields), as_)
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload["feedback"]


async def update_payload(api, feedback: dict, status: str, as_: tuple = PEK01, **fields) -> dict:
    variables = {"input": {"id": feedback["id"], "status": status, **fields}}
    return data(await api.gql(FEEDBACK_UPDATE, variables, as_=as_))["feedbackUpdate"]


def instant(value: str) -> datetime:
    """A DateTime the API returned."""
    return datetime.fromisoformat(value)
