"""careCallLog over HTTP: the call and the member's care columns in one go, validation
with nothing written, scope, roles, idempotency; and Member.careCalls (staff only,
newest first by calledAt)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from zoneinfo import ZoneInfo

from tests.api.care_factories import (
    ADMIN, CALL_FIELDS, NCB, PEK01, PVG01, TSN01, care_columns, care_rows, instant, log_call, logged, set_care, vip,
)
from tests.api.conftest import as_member, data, error_codes, problems, set_status

CARE_CALLS = "query($id: ID, $first: Int, $after: String) { member(id: $id) { careCalls(first: $first, after: $after) { totalCount edges { cursor node { %s } } pageInfo { hasNextPage endCursor } } } }" % CALL_FIELDS


def fixed_now() -> datetime:
    """A whole second a little after now: later than any enrolment the test made."""
    return datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=2)


async def test_a_reached_call_is_logged_and_sets_last_contact_and_follow_up(clocked_api):
    api = clocked_api
    member = await vip(api, "PEK01", "GOLD")
    api.clock.now = now = fixed_now()
    today = now.astimezone(api.settings.tz).date()
    follow_up = today + timedelta(days=14)
    call = await logged(
        api, member, PEK01, notes="  Prefers aisle seats.  ", needs=["  window   seat ", "vegetarian meal"],
        followUpOn=follow_up.isoformat(),
    )
    assert call["outcome"] == "REACHED"
    assert call["notes"] == "Prefers aisle seats."
    assert call["needs"] == ["window seat", "vegetarian meal"]
    assert call["followUpOn"] == follow_up.isoformat()
    assert instant(call["calledAt"]) == now  # default: now
    assert call["actor"] == "office:office-test@PEK01"
    assert call["office"] == {"code": "PEK01"}
    assert call["member"]["id"] == member["id"]
    assert await care_columns(member) == (today, follow_up)


async def test_a_contact_without_follow_up_clears_it_and_a_missed_call_keeps_both(clocked_api):
    api = clocked_api
    member = await vip(api)
    api.clock.now = now = fixed_now()
    today = now.astimezone(api.settings.tz).date()
    earlier, follow_up = today - timedelta(days=40), today + timedelta(days=3)
    await set_care(member, care_last_contact_on=earlier, care_follow_up_on=follow_up)

    await logged(api, member, outcome="NO_ANSWER")
    assert await care_columns(member) == (earlier, follow_up)  # not a contact: nothing moves
    await logged(api, member, outcome="WRONG_NUMBER", followUpOn=(today + timedelta(days=5)).isoformat())
    assert await care_columns(member) == (earlier, today + timedelta(days=5))  # a new follow-up date all the same
    await logged(api, member, outcome="DECLINED")
    assert await care_columns(member) == (today, None)  # declining to talk is a contact


async def test_a_backdated_call_never_moves_last_contact_back_nor_touches_a_later_follow_up(clocked_api):
    api = clocked_api
    member = await vip(api)
    api.clock.now = now = fixed_now()
    today = now.astimezone(api.settings.tz).date()
    follow_up = today + timedelta(days=7)
    await set_care(member, enrolled_at=now - timedelta(days=30))
    await logged(api, member, followUpOn=follow_up.isoformat())
    # Logged afterwards, made five minutes earlier (a colleague's call, its time given in UTC+8).
    await logged(api, member, calledAt=(now - timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Shanghai")).isoformat())
    assert await care_columns(member) == (today, follow_up)

    # A call from last week: last contact stays today.
    await logged(api, member, calledAt=(now - timedelta(days=7)).isoformat(), outcome="REACHED")
    assert await care_columns(member) == (today, follow_up)


async def test_called_at_may_be_now_but_not_a_second_later_nor_before_enrolment(clocked_api):
    api = clocked_api
    member = await vip(api)
    api.clock.now = now = fixed_now()
    late = await log_call(api, member, calledAt=(now + timedelta(seconds=1)).isoformat())
    assert problems(late) == [("INVALID", ["input", "calledAt"])]
    early = await log_call(api, member, calledAt="2001-01-01T09:00:00+08:00")
    assert problems(early) == [("INVALID", ["input", "calledAt"])]
    naive = await log_call(api, member, calledAt=now.replace(tzinfo=None).isoformat())
    assert problems(naive) == [("INVALID", ["input", "calledAt"])]
    assert await care_rows() == (0, 0, 0)
    assert await care_columns(member) == (None, None)
    call = await logged(api, member, calledAt=now.isoformat())
    assert instant(call["calledAt"]) == now


async def test_follow_up_may_be_today_but_not_yesterday(clocked_api):
    api = clocked_api
    member = await vip(api)
    api.clock.now = now = fixed_now()
    today = now.astimezone(api.settings.tz).date()
    payload = await log_call(api, member, followUpOn=(today - timedelta(days=1)).isoformat())
    assert problems(payload) == [("INVALID", ["input", "followUpOn"])]
    assert await care_rows() == (0, 0, 0)
    await logged(api, member, followUpOn=today.isoformat())
    assert await care_columns(member) == (today, today)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"needs": [f"need {n}" for n in range(21)]}, ["input", "needs"]),
        ({"needs": ["window seat", "lounge", "x" * 101]}, ["input", "needs", "2"]),
        ({"needs": ["window seat", "   "]}, ["input", "needs", "1"]),
        ({"notes": "n" * 2001}, ["input", "notes"]),
        ({"idempotencyKey": "   "}, ["input", "idempotencyKey"]),
    ],
)
async def test_bad_notes_and_needs_are_refused_and_nothing_is_written(api, fields, field):
    member = await vip(api)
    payload = await log_call(api, member, **fields)
    assert payload["careCall"] is None
    assert problems(payload) == [("INVALID", field)]
    assert await care_rows() == (0, 0, 0)
    assert await care_columns(member) == (None, None)


async def test_twenty_needs_of_a_hundred_characters_and_notes_of_2000_are_accepted(api):
    member = await vip(api)
    needs = [f"{n:02d}" + "x" * 98 for n in range(20)]
    call = await logged(api, member, needs=needs, notes="n" * 2000)
    assert call["needs"] == needs and len(call["notes"]) == 2000


async def test_the_member_must_be_active(api):
    member = await vip(api)
    await set_status(api, member, "SUSPENDED")
    payload = await log_call(api, member)
    assert problems(payload) == [("MEMBER_NOT_ACTIVE", ["input", "memberId"])]
    assert await care_rows() == (0, 0, 0)


async def test_scope_an_office_calls_its_own_members_a_branch_its_offices_admin_anyone(api):
    pek, tsn, pvg = await vip(api, "PEK01"), await vip(api, "TSN01"), await vip(api, "PVG01")
    assert problems(await log_call(api, tsn, PEK01)) == [("NOT_FOUND", ["input", "memberId"])]
    assert problems(await log_call(api, pek, TSN01)) == [("NOT_FOUND", ["input", "memberId"])]
    assert problems(await log_call(api, pvg, NCB)) == [("NOT_FOUND", ["input", "memberId"])]
    assert problems(await log_call(api, {"id": "999999"}, ADMIN)) == [("NOT_FOUND", ["input", "memberId"])]
    assert await care_rows() == (0, 0, 0)
    assert (await logged(api, tsn, NCB))["office"] == {"code": "TSN01"}
    assert (await logged(api, pek, NCB))["actor"] == "branch:branch-test@NCB"
    assert (await logged(api, pvg, ADMIN))["office"] == {"code": "PVG01"}
    assert (await logged(api, pvg, PVG01))["office"] == {"code": "PVG01"}
    assert await care_rows() == (4, 0, 0)


@pytest.mark.parametrize("role", [("airline",), ("partner", "HOTELCO"), "member"])
async def test_other_roles_may_not_log_calls(api, role):
    member = await vip(api)
    as_ = as_member(member) if role == "member" else role
    from tests.api.care_factories import CARE_CALL_LOG

    result = await api.gql(CARE_CALL_LOG, {"input": {"memberId": member["id"], "outcome": "REACHED"}}, as_=as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert await care_rows() == (0, 0, 0)


async def test_idempotency_key_replays_the_first_call_and_refuses_other_content(api):
    member = await vip(api)
    first = await logged(api, member, needs=["lounge"], idempotencyKey="call-1")
    again = await logged(api, member, needs=["lounge"], idempotencyKey="call-1")
    assert again["id"] == first["id"]
    assert await care_rows() == (1, 0, 0)
    other = await log_call(api, member, needs=["upgrade"], idempotencyKey="call-1")
    assert problems(other) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    # The key is the caller's: another office's desk... of the same member's branch may use it.
    assert (await logged(api, member, NCB, needs=["upgrade"], idempotencyKey="call-1"))["id"] != first["id"]
    assert await care_rows() == (2, 0, 0)


async def test_member_care_calls_newest_first_by_called_at_with_paging(clocked_api):
    api = clocked_api
    member = await vip(api)
    await set_care(member, enrolled_at=datetime(2025, 1, 1, tzinfo=timezone.utc))
    api.clock.now = now = fixed_now()
    made = {}
    # Logged out of order; one given in UTC+8 (its local hour is later than the UTC hour of a newer call).
    for hours, zone in ((72, timezone.utc), (240, timezone.utc), (1, timezone.utc), (2, ZoneInfo("Asia/Shanghai"))):
        at = (now - timedelta(hours=hours)).astimezone(zone).isoformat()
        made[hours] = (await logged(api, member, outcome="NO_ANSWER", calledAt=at))["id"]
    seen, after = [], None
    while True:
        result = data(await api.gql(CARE_CALLS, {"id": member["id"], "first": 3, "after": after}, as_=PEK01))
        calls = result["member"]["careCalls"]
        assert calls["totalCount"] == 4
        seen += [edge["node"]["id"] for edge in calls["edges"]]
        if not calls["pageInfo"]["hasNextPage"]:
            break
        after = calls["pageInfo"]["endCursor"]
    assert seen == [made[1], made[2], made[72], made[240]]


async def test_member_care_calls_are_for_staff_in_scope_only(api):
    member = await vip(api)
    await logged(api, member)
    assert data(await api.gql(CARE_CALLS, {"id": member["id"]}, as_=NCB))["member"]["careCalls"]["totalCount"] == 1
    assert data(await api.gql(CARE_CALLS, {"id": member["id"]}, as_=ADMIN))["member"]["careCalls"]["totalCount"] == 1
    assert data(await api.gql(CARE_CALLS, {"id": member["id"]}, as_=TSN01))["member"] is None  # out of scope
    own = await api.gql("{ me { careCalls { totalCount } } }", as_=as_member(member))
    assert error_codes(own) == ["FORBIDDEN"]  # calls are staff notes
    bad = await api.gql(CARE_CALLS, {"id": member["id"], "after": "not-a-cursor"}, as_=PEK01)
    assert error_codes(bad) == ["INVALID"]
