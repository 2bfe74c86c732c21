"""feedback and feedbackItem over HTTP: filters, newest first with keyset paging, scope,
and "overdue" at its edge with the server's clock fixed: exactly at respondBy a complaint
is not overdue, one second later it is — the Feedback.overdue field and the SQL filter
agree on both sides."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.api.care_factories import (
    ADMIN, ECB, NCB, PEK01, PVG01, TSN01, instant, submitted, update_payload,
)
from tests.api.conftest import as_member, data, enroll, error_codes

T0 = datetime(2026, 3, 2, 1, 30, 15, 250000, tzinfo=timezone.utc)
HOURS_48 = timedelta(hours=48)

LIST = """query($filter: FeedbackFilter, $first: Int, $after: String) {
  feedback(filter: $filter, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id subject status overdue office { code } } } } }"""
ITEM = "query($id: ID!) { feedbackItem(id: $id) { id subject overdue respondBy member { id } office { code } } }"


async def listing(api, as_=PEK01, **variables) -> dict:
    return data(await api.gql(LIST, variables, as_=as_))["feedback"]


def subjects(connection: dict) -> list[str]:
    return [edge["node"]["subject"] for edge in connection["edges"]]


async def build(api) -> dict[str, dict]:
    """Six items an hour apart from T0, newest last: PEK01 A-D, TSN01 E, PVG01 F."""
    pek, tsn, pvg = await enroll(api, "PEK01"), await enroll(api, "TSN01"), await enroll(api, "PVG01")
    plan = [
        ("A", pek, "COMPLAINT", None),
        ("B", pek, "COMPLAINT", "IN_PROGRESS"),
        ("C", pek, "COMPLAINT", "RESOLVED"),
        ("D", pek, "SUGGESTION", None),
        ("E", tsn, "COMPLAINT", None),
        ("F", pvg, "COMPLAINT", None),
    ]
    items = {}
    for hour, (subject, member, kind, status) in enumerate(plan):
        api.clock.now = T0 + timedelta(hours=hour)
        item = await submitted(api, member, ADMIN, kind=kind, subject=subject)
        if status is not None:
            extra = {"resolution": "Answered."} if status == "RESOLVED" else {}
            assert (await update_payload(api, item, status, ADMIN, **extra))["userErrors"] == []
        items[subject] = {**item, "member": member}
    return items


async def test_overdue_exactly_at_respond_by_is_not_and_one_second_later_is(clocked_api):
    api = clocked_api
    items = await build(api)
    a = items["A"]
    assert instant(a["respondBy"]) == T0 + HOURS_48

    async def overdue_now() -> tuple[list[str], list[str], bool]:
        flagged = await listing(api, ADMIN, filter={"overdue": True})
        rest = await listing(api, ADMIN, filter={"overdue": False})
        field = data(await api.gql(ITEM, {"id": a["id"]}, as_=ADMIN))["feedbackItem"]["overdue"]
        for connection in (flagged, rest):  # the field agrees with the filter on every row
            assert all(e["node"]["overdue"] is (connection is flagged) for e in connection["edges"])
        return sorted(subjects(flagged)), sorted(subjects(rest)), field

    api.clock.now = T0 + HOURS_48
    assert await overdue_now() == ([], ["A", "B", "C", "D", "E", "F"], False)
    api.clock.now = T0 + HOURS_48 + timedelta(seconds=1)
    assert await overdue_now() == (["A"], ["B", "C", "D", "E", "F"], True)
    api.clock.now = T0 + HOURS_48 + timedelta(hours=1)  # B's respondBy exactly
    assert await overdue_now() == (["A"], ["B", "C", "D", "E", "F"], True)
    api.clock.now = T0 + HOURS_48 + timedelta(hours=1, microseconds=1)
    assert (await overdue_now())[0] == ["A", "B"]
    # The same instant in the programme's time zone: the same answer.
    api.clock.now = (T0 + HOURS_48).astimezone(ZoneInfo("Asia/Shanghai"))
    assert (await overdue_now())[0] == []
    api.clock.now = (T0 + HOURS_48 + timedelta(seconds=1)).astimezone(ZoneInfo("Asia/Shanghai"))
    assert (await overdue_now())[0] == ["A"]
    # Days later: every open complaint; C (resolved) and D (a suggestion) never.
    api.clock.now = T0 + timedelta(days=10)
    assert await overdue_now() == (["A", "B", "E", "F"], ["C", "D"], True)
    assert subjects(await listing(api, PEK01, filter={"overdue": True})) == ["B", "A"]


async def test_filters_and_newest_first(clocked_api):
    api = clocked_api
    items = await build(api)
    assert subjects(await listing(api, ADMIN)) == ["F", "E", "D", "C", "B", "A"]
    assert subjects(await listing(api, ADMIN, filter={"statuses": ["OPEN"]})) == ["F", "E", "D", "A"]
    assert subjects(await listing(api, ADMIN, filter={"statuses": ["IN_PROGRESS", "RESOLVED"]})) == ["C", "B"]
    assert subjects(await listing(api, ADMIN, filter={"statuses": []})) == []
    assert subjects(await listing(api, ADMIN, filter={"kinds": ["SUGGESTION"]})) == ["D"]
    assert subjects(await listing(api, ADMIN, filter={"kinds": ["COMPLAINT"], "statuses": ["OPEN"]})) == ["F", "E", "A"]
    assert subjects(await listing(api, ADMIN, filter={"officeCode": "TSN01"})) == ["E"]
    assert subjects(await listing(api, ADMIN, filter={"branchCode": "NCB"})) == ["E", "D", "C", "B", "A"]
    assert subjects(await listing(api, ADMIN, filter={"memberId": items["E"]["member"]["id"]})) == ["E"]
    assert subjects(await listing(api, ADMIN, filter={"memberId": "not-an-id"})) == []
    assert subjects(await listing(api, NCB, filter={"officeCode": "PEK01", "kinds": ["COMPLAINT"]})) == ["C", "B", "A"]
    counted = await listing(api, ADMIN, filter={"kinds": ["COMPLAINT"]}, first=0)
    assert counted["totalCount"] == 5 and counted["edges"] == [] and counted["pageInfo"]["hasNextPage"]


async def test_paging_has_no_gap_or_duplicate_when_new_feedback_arrives(clocked_api):
    api = clocked_api
    items = await build(api)
    page1 = await listing(api, ADMIN, first=4)
    assert subjects(page1) == ["F", "E", "D", "C"] and page1["pageInfo"]["hasNextPage"]
    api.clock.now = T0 + timedelta(hours=10)
    await submitted(api, items["A"]["member"], ADMIN, subject="G")  # newer than all: before the cursor
    page2 = await listing(api, ADMIN, first=4, after=page1["pageInfo"]["endCursor"])
    assert subjects(page2) == ["B", "A"] and not page2["pageInfo"]["hasNextPage"]
    assert page2["totalCount"] == 7
    for after in ("junk", page1["edges"][0]["cursor"][:-3]):
        assert error_codes(await api.gql(LIST, {"after": after}, as_=ADMIN)) == ["INVALID"]


async def test_scope_office_branch_admin_and_feedback_item(clocked_api):
    api = clocked_api
    items = await build(api)
    assert subjects(await listing(api, PEK01)) == ["D", "C", "B", "A"]
    assert subjects(await listing(api, TSN01)) == ["E"]
    assert subjects(await listing(api, NCB)) == ["E", "D", "C", "B", "A"]
    assert subjects(await listing(api, ECB)) == ["F"]
    assert subjects(await listing(api, PVG01)) == ["F"]
    assert (await listing(api, ADMIN))["totalCount"] == 6
    e = items["E"]
    item = data(await api.gql(ITEM, {"id": e["id"]}, as_=NCB))["feedbackItem"]
    assert item["subject"] == "E" and item["office"] == {"code": "TSN01"} and item["member"] == {"id": e["member"]["id"]}
    assert data(await api.gql(ITEM, {"id": e["id"]}, as_=PEK01))["feedbackItem"] is None
    assert data(await api.gql(ITEM, {"id": items["F"]["id"]}, as_=NCB))["feedbackItem"] is None
    assert data(await api.gql(ITEM, {"id": "99999999"}, as_=ADMIN))["feedbackItem"] is None
    assert data(await api.gql(ITEM, {"id": "x"}, as_=ADMIN))["feedbackItem"] is None


async def test_feedback_stays_with_the_office_it_was_routed_to(clocked_api):
    api = clocked_api
    items = await build(api)
    member = items["A"]["member"]
    moved = await api.gql(
        "mutation($i: MemberRegionAssignInput!) { memberRegionAssign(input: $i) { userErrors { code } } }",
        {"i": {"memberId": member["id"], "officeCode": "PVG01", "reason": "moved to Shanghai"}}, as_=ADMIN,
    )
    assert data(moved)["memberRegionAssign"]["userErrors"] == []
    assert "A" in subjects(await listing(api, PEK01))
    item = data(await api.gql(ITEM, {"id": items["A"]["id"]}, as_=PEK01))["feedbackItem"]
    assert item["office"] == {"code": "PEK01"} and item["member"] is None  # the member is PVG01's now
    assert "A" not in subjects(await listing(api, PVG01))


@pytest.mark.parametrize(
    ("as_", "filter", "code"),
    [
        (PEK01, {"officeCode": "TSN01"}, "FORBIDDEN"),
        (PEK01, {"branchCode": "NCB"}, "FORBIDDEN"),
        (NCB, {"branchCode": "ECB"}, "FORBIDDEN"),
        (ADMIN, {"officeCode": "XXX99"}, "INVALID"),
        (("airline",), None, "FORBIDDEN"),
        (("partner", "HOTELCO"), None, "FORBIDDEN"),
    ],
)
async def test_regions_outside_the_scope_and_other_roles_are_refused(clocked_api, as_, filter, code):
    assert error_codes(await clocked_api.gql(LIST, {"filter": filter}, as_=as_)) == [code]


async def test_members_read_neither_the_list_nor_an_item(clocked_api):
    api = clocked_api
    member = await enroll(api, "PEK01")
    item = await submitted(api, member, as_member(member))
    assert error_codes(await api.gql(LIST, {}, as_=as_member(member))) == ["FORBIDDEN"]
    assert error_codes(await api.gql(ITEM, {"id": item["id"]}, as_=as_member(member))) == ["FORBIDDEN"]


async def test_region_statistics_count_overdue_complaints_on_the_same_clock(clocked_api):
    """regionStats / officeStats use the server's now, as the overdue field and filter do."""
    api = clocked_api
    await build(api)
    query = "{ regionStats { overdueComplaints } officeStats { officeCode overdueComplaints } }"

    async def overdue() -> tuple[int, int]:
        result = data(await api.gql(query, as_=ADMIN))
        return result["regionStats"]["overdueComplaints"], sum(row["overdueComplaints"] for row in result["officeStats"])

    api.clock.now = T0 + HOURS_48
    assert await overdue() == (0, 0)
    api.clock.now = T0 + HOURS_48 + timedelta(seconds=1)
    assert await overdue() == (1, 1)
    api.clock.now = T0 + timedelta(days=10)
    assert await overdue() == (4, 4)
