"""careCallsDue over HTTP: which VIPs are due, why, in what order; keyset paging with
no gap or duplicate while the list changes; scope (an office never sees another
office's VIPs, a branch sees all its offices) and roles. The server's clock is fixed
(clocked_api), so "today" does not move during a test."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from care.segments import refresh_segments
from loyalty.rules import load_rules
from members.models import Member

from tests.api.care_factories import ADMIN, ECB, NCB, PEK01, PVG01, TSN01, logged, set_care, vip
from tests.api.conftest import as_member, data, enroll, error_codes, set_status, set_tier
from tests.api.loyalty_factories import loyalty_fly

DUE = """query($o: String, $b: String, $first: Int, $after: String) {
  careCallsDue(officeCode: $o, branchCode: $b, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { reason reasons dueSince lastContactOn followUpOn member { id tier office { code } } } } } }"""


def start_clock(api) -> date:
    """Fix the server's now ten minutes after this moment (later than every enrolment the
    test makes, however slow the machine: a call may not predate the enrolment); the
    programme's today."""
    api.clock.now = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
    return api.clock.now.astimezone(api.settings.tz).date()


async def due(api, as_=PEK01, **variables) -> dict:
    return data(await api.gql(DUE, variables, as_=as_))["careCallsDue"]


def ids(connection: dict) -> list[str]:
    return [edge["node"]["member"]["id"] for edge in connection["edges"]]


async def build_pek01(api, today: date) -> dict[str, dict]:
    """PEK01's VIPs, one per case (name: why it is or is not due), plus non-VIPs."""
    long_ago = today - timedelta(days=400)

    def days_ago(n: int) -> date:
        return today - timedelta(days=n)

    m = {}
    m["platinum_30"] = await vip(api, "PEK01", "PLATINUM")
    await set_care(m["platinum_30"], tier_since=long_ago, care_last_contact_on=days_ago(30))
    m["gold_59"] = await vip(api, "PEK01", "GOLD")
    await set_care(m["gold_59"], tier_since=long_ago, care_last_contact_on=days_ago(59))
    m["gold_60"] = await vip(api, "PEK01", "GOLD")
    await set_care(m["gold_60"], tier_since=long_ago, care_last_contact_on=days_ago(60))
    m["silver_89"] = await vip(api, "PEK01", "SILVER")
    await set_care(m["silver_89"], tier_since=long_ago, care_last_contact_on=days_ago(89))
    m["silver_90"] = await vip(api, "PEK01", "SILVER")
    await set_care(m["silver_90"], tier_since=long_ago, care_last_contact_on=days_ago(90))
    m["follow_up"] = await vip(api, "PEK01", "GOLD")
    await set_care(m["follow_up"], tier_since=long_ago, care_last_contact_on=days_ago(10), care_follow_up_on=days_ago(2))
    m["upgraded"] = await vip(api, "PEK01", "SILVER")  # upgraded today, never called
    m["never"] = await vip(api, "PEK01", "PLATINUM")
    await set_care(m["never"], tier_since=days_ago(100))
    m["at_risk"] = await vip(api, "PEK01", "GOLD")  # no miles, tier ends in 60 days
    await set_care(m["at_risk"], tier_since=long_ago, tier_valid_until=today + timedelta(days=60),
                   care_last_contact_on=days_ago(40))
    m["standard"] = await enroll(api, "PEK01")  # never called, but not a VIP
    m["suspended"] = await vip(api, "PEK01", "GOLD")
    await set_status(api, m["suspended"], "SUSPENDED")
    return m


async def test_reasons_due_since_and_urgency_order(clocked_api):
    api = clocked_api
    today = start_clock(api)
    m = await build_pek01(api, today)
    result = await due(api)
    assert result["totalCount"] == 7
    assert not result["pageInfo"]["hasNextPage"]
    rows = [edge["node"] for edge in result["edges"]]
    by_name = {name: member["id"] for name, member in m.items()}
    names = {v: k for k, v in by_name.items()}
    assert [names[row["member"]["id"]] for row in rows] == [
        "follow_up", "at_risk", "upgraded", "never", "platinum_30", "gold_60", "silver_90",
    ]
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    assert [(r["reason"], r["reasons"], r["dueSince"], r["lastContactOn"], r["followUpOn"]) for r in rows] == [
        ("FOLLOW_UP_DUE", ["FOLLOW_UP_DUE"], day(2), day(10), day(2)),
        ("AT_RISK", ["AT_RISK"], day(10), day(40), None),  # last contact + 30 days
        ("JUST_UPGRADED", ["JUST_UPGRADED", "NEVER_CALLED"], day(0), None, None),
        ("NEVER_CALLED", ["NEVER_CALLED"], day(100), None, None),
        ("INTERVAL_PASSED", ["INTERVAL_PASSED"], day(0), day(30), None),
        ("INTERVAL_PASSED", ["INTERVAL_PASSED"], day(0), day(60), None),
        ("INTERVAL_PASSED", ["INTERVAL_PASSED"], day(0), day(90), None),
    ]
    assert [r["member"]["tier"] for r in rows[-3:]] == ["PLATINUM", "GOLD", "SILVER"]


async def test_a_logged_call_takes_a_member_off_the_list(clocked_api):
    api = clocked_api
    today = start_clock(api)
    m = await build_pek01(api, today)
    await logged(api, m["silver_90"])
    await logged(api, m["follow_up"])  # a contact without a follow-up clears it
    await logged(api, m["upgraded"], outcome="NO_ANSWER")  # not reached: still due
    result = await due(api)
    assert result["totalCount"] == 5
    assert m["silver_90"]["id"] not in ids(result) and m["follow_up"]["id"] not in ids(result)
    assert m["upgraded"]["id"] in ids(result)


async def test_paging_by_cursor_has_no_gap_or_duplicate_while_the_list_changes(clocked_api):
    api = clocked_api
    today = start_clock(api)
    m = await build_pek01(api, today)
    page1 = await due(api, first=3)
    assert [e["node"]["member"]["id"] for e in page1["edges"]] == [m["follow_up"]["id"], m["at_risk"]["id"], m["upgraded"]["id"]]
    assert page1["pageInfo"]["hasNextPage"] and page1["pageInfo"]["endCursor"] == page1["edges"][-1]["cursor"]
    # Between pages: the first on page 2 is called (leaves the list), and a new VIP falls due before the cursor.
    await logged(api, m["never"])
    newcomer = await vip(api, "PEK01", "GOLD")
    await set_care(newcomer, tier_since=today - timedelta(days=300), care_last_contact_on=today - timedelta(days=1),
                   care_follow_up_on=today)
    page2 = await due(api, first=3, after=page1["pageInfo"]["endCursor"])
    assert ids(page2) == [m["platinum_30"]["id"], m["gold_60"]["id"], m["silver_90"]["id"]]  # nothing skipped
    assert page2["pageInfo"]["hasNextPage"] is False
    assert page2["totalCount"] == 7  # 7 - "never" + the newcomer
    first_again = await due(api, first=2)
    assert ids(first_again) == [m["follow_up"]["id"], newcomer["id"]]  # a later reading has the newcomer near the top


async def test_first_zero_and_bad_cursors(clocked_api):
    api = clocked_api
    today = start_clock(api)
    await build_pek01(api, today)
    empty = await due(api, first=0)
    assert empty["edges"] == [] and empty["totalCount"] == 7 and empty["pageInfo"]["hasNextPage"]
    for after in ("junk", "eyJ4Ijox"):
        assert error_codes(await api.gql(DUE, {"after": after}, as_=PEK01)) == ["INVALID"]
    assert error_codes(await api.gql(DUE, {"first": 101}, as_=PEK01)) == ["INVALID"]


async def test_scope_office_branch_and_admin(clocked_api):
    api = clocked_api
    today = start_clock(api)
    pek = await vip(api, "PEK01", "GOLD")
    tsn = await vip(api, "TSN01", "GOLD")
    pvg = await vip(api, "PVG01", "PLATINUM")
    for member in (pek, tsn, pvg):
        await set_care(member, tier_since=today - timedelta(days=200))  # never called
    assert ids(await due(api, PEK01)) == [pek["id"]]
    assert ids(await due(api, TSN01)) == [tsn["id"]]
    assert ids(await due(api, PVG01)) == [pvg["id"]]
    assert ids(await due(api, NCB)) == [pek["id"], tsn["id"]]  # same reason and tier: by member id
    assert ids(await due(api, ECB)) == [pvg["id"]]
    assert ids(await due(api, ADMIN)) == [pvg["id"], pek["id"], tsn["id"]]  # PLATINUM first
    assert ids(await due(api, NCB, o="TSN01")) == [tsn["id"]]
    assert ids(await due(api, ADMIN, b="NCB")) == [pek["id"], tsn["id"]]
    assert ids(await due(api, ADMIN, o="PVG01")) == [pvg["id"]]


@pytest.mark.parametrize(
    ("as_", "variables", "code"),
    [
        (PEK01, {"o": "TSN01"}, "FORBIDDEN"),  # another office of the same branch
        (PEK01, {"b": "NCB"}, "FORBIDDEN"),  # wider than the office
        (NCB, {"o": "PVG01"}, "FORBIDDEN"),
        (NCB, {"b": "ECB"}, "FORBIDDEN"),
        (ADMIN, {"o": "XXX99"}, "INVALID"),
        (ADMIN, {"b": "XXB"}, "INVALID"),
        (("airline",), {}, "FORBIDDEN"),
        (("partner", "HOTELCO"), {}, "FORBIDDEN"),
        (None, {}, "UNAUTHENTICATED"),
    ],
)
async def test_regions_outside_the_scope_and_other_roles_are_refused(clocked_api, as_, variables, code):
    result = await clocked_api.gql(DUE, variables, as_=as_)
    assert error_codes(result) == [code]


async def test_members_may_not_read_the_worklist(clocked_api):
    member = await vip(clocked_api)
    assert error_codes(await clocked_api.gql(DUE, {}, as_=as_member(member))) == ["FORBIDDEN"]


async def test_a_member_lowered_to_silver_today_is_not_just_upgraded(clocked_api):
    api = clocked_api
    start_clock(api)
    raised, lowered = await vip(api, "PEK01", "GOLD"), await vip(api, "PEK01", "GOLD")
    await set_tier(api, raised, "PLATINUM")
    await set_tier(api, lowered, "SILVER")  # latest tier event: GOLD -> SILVER
    rows = {e["node"]["member"]["id"]: e["node"]["reasons"] for e in (await due(api))["edges"]}
    assert rows == {raised["id"]: ["JUST_UPGRADED", "NEVER_CALLED"], lowered["id"]: ["NEVER_CALLED"]}


async def test_an_upgrade_posted_late_from_an_old_flight_gets_a_welcome_call(clocked_api):
    api = clocked_api
    today = start_clock(api)
    member = await enroll(api, "PEK01")
    flight_day = today - timedelta(days=70)
    # 14,000 km in J: 42,000 qualifying miles, over SILVER's 40,000; posted 70 days late.
    payload = await loyalty_fly(api, member, "late-flight-1", distance_km=14_000, fare_class="J", day=flight_day)
    assert payload["tierChange"]["toTier"] == "SILVER"
    rows = (await due(api))["edges"]
    assert [(r["node"]["member"]["id"], r["node"]["reasons"], r["node"]["dueSince"]) for r in rows] == [
        (member["id"], ["JUST_UPGRADED", "NEVER_CALLED"], today.isoformat())
    ]


async def test_a_vip_turning_dormant_is_due_a_churn_call_until_reached(clocked_api):
    api = clocked_api
    today = start_clock(api)
    gold = await vip(api, "PEK01", "GOLD")
    await Member.filter(id=int(gold["id"])).update(enrolled_at=datetime(2020, 1, 1, tzinfo=timezone.utc))
    await set_care(gold, tier_since=today - timedelta(days=400), care_last_contact_on=today - timedelta(days=10))
    assert (await due(api))["totalCount"] == 0  # reached 10 days ago: within GOLD's 60 days
    await refresh_segments(load_rules(), today, timezone=api.settings.tz)  # no activity in either period
    rows = (await due(api))["edges"]
    assert [(r["node"]["reasons"], r["node"]["dueSince"]) for r in rows] == [(["DORMANT"], today.isoformat())]
    await logged(api, gold)
    assert (await due(api))["totalCount"] == 0
