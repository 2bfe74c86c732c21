"""Keyset paging of members: a walk with first: 10 sees every member of a region exactly
once, in a stable order, also while members are added; bad cursors are INVALID."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

import pytest

from tests.api.conftest import data, enroll, error_codes, set_tier

NODE = "id familyName givenName tier cardNumber enrolledAt"
PAGE = """query($first: Int, $after: String, $orderBy: MemberOrder) {
  members(first: $first, after: $after, orderBy: $orderBy) {
    totalCount edges { cursor node { %s } } pageInfo { hasNextPage endCursor } } }""" % NODE

ORDERS = ["TIER_DESC_NAME", "CARD_NUMBER", "ENROLLED_AT_DESC"]
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
RANK = {"STANDARD": 0, "SILVER": 1, "GOLD": 2, "PLATINUM": 3}
FAMILIES = ["Li", "Wang", "Zhang"]
GIVENS = ["An", "Bo", "Chen", "Dan", "Fang"]  # 15 names for 57 people: ties broken by id


def _tier(i: int) -> str:
    return "PLATINUM" if i == 50 else "GOLD" if i % 9 == 0 else "SILVER" if i % 13 == 5 else "STANDARD"


@pytest.fixture
async def crowd(api) -> dict[str, list[dict]]:
    """57 members in branch NCB (40 in PEK01, 17 in TVS01), 11 of them VIPs, and 5 in PVG01 (ECB)."""
    people: dict[str, list[dict]] = {"PEK01": [], "TVS01": [], "PVG01": []}
    for i in range(62):
        office = "PEK01" if i < 40 else "TVS01" if i < 57 else "PVG01"
        member = await enroll(api, office, fields=NODE, familyName=FAMILIES[i % 3], givenName=GIVENS[i % 5])
        if _tier(i) != "STANDARD":
            await set_tier(api, member, _tier(i))
        people[office].append(member)
    return people


def _sort_key(order: str) -> Callable[[dict], tuple]:
    """The ordering as the client can check it: a key that sorts ascending."""
    if order == "TIER_DESC_NAME":
        return lambda m: (-RANK[m["tier"]], m["familyName"], m["givenName"], int(m["id"]))
    if order == "CARD_NUMBER":
        return lambda m: (m["cardNumber"],)
    return lambda m: (-(datetime.fromisoformat(m["enrolledAt"]) - EPOCH), -int(m["id"]))


async def _walk(api, as_, order: str, between_pages: Callable[[int, dict], Awaitable[None]] | None = None):
    """Every page with first: 10; `between_pages(n, last_node)` runs after page n."""
    nodes, totals, after, pages = [], [], None, 0
    while True:
        page = data(await api.gql(PAGE, {"first": 10, "after": after, "orderBy": order}, as_=as_))["members"]
        pages += 1
        nodes += [edge["node"] for edge in page["edges"]]
        totals.append(page["totalCount"])
        assert len(page["edges"]) == 10 or not page["pageInfo"]["hasNextPage"]
        assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, totals, pages
        after = page["pageInfo"]["endCursor"]
        if between_pages is not None:
            await between_pages(pages, nodes[-1])


def _ids(members: list[dict]) -> list[str]:
    return [m["id"] for m in members]


@pytest.mark.parametrize("order", ORDERS)
async def test_branch_walk_sees_each_member_once_in_order(api, crowd, order):
    nodes, totals, pages = await _walk(api, ("branch", "NCB"), order)
    assert (len(nodes), pages, totals) == (57, 6, [57] * 6)
    assert len(set(_ids(nodes))) == 57
    assert set(_ids(nodes)) == set(_ids(crowd["PEK01"] + crowd["TVS01"]))
    assert nodes == sorted(nodes, key=_sort_key(order))
    if order == "TIER_DESC_NAME":
        assert [m["tier"] for m in nodes[:12]] == ["PLATINUM"] + ["GOLD"] * 7 + ["SILVER"] * 3 + ["STANDARD"]


async def test_office_walk_sees_its_office_only(api, crowd):
    nodes, totals, pages = await _walk(api, ("office", "PEK01"), "TIER_DESC_NAME")
    assert (len(nodes), pages, totals[0]) == (40, 4, 40)
    assert _ids(nodes) == _ids(sorted(nodes, key=_sort_key("TIER_DESC_NAME")))
    assert set(_ids(nodes)) == set(_ids(crowd["PEK01"]))


async def test_the_same_cursor_gives_the_same_page(api, crowd):
    first = data(await api.gql(PAGE, {"first": 10}, as_=("admin",)))["members"]
    after = first["edges"][4]["cursor"]
    again = [data(await api.gql(PAGE, {"first": 10, "after": after}, as_=("admin",)))["members"] for _ in range(2)]
    assert again[0] == again[1]
    assert _ids([e["node"] for e in again[0]["edges"]])[:5] == _ids([e["node"] for e in first["edges"]])[5:]


@pytest.mark.parametrize("order", ORDERS)
async def test_members_added_mid_walk_cause_no_gap_and_no_duplicate(api, crowd, order):
    added: list[dict] = []
    seen_before: list[dict] = []

    async def add_members(page: int, last: dict) -> None:
        if page != 3:
            return
        seen_before.append(last)
        added.append(await enroll(api, "PEK01", fields=NODE, familyName="Aaa", givenName="Aaa"))  # early among STANDARD
        added.append(await enroll(api, "TVS01", fields=NODE, familyName="Zzz", givenName="Zzz"))  # sorts last
        top = await enroll(api, "PEK01", fields=NODE, familyName="Mmm", givenName="Mmm")
        await set_tier(api, top, "PLATINUM")  # sorts first
        added.append({**top, "tier": "PLATINUM"})
        await enroll(api, "PVG01")  # another branch: never seen

    nodes, totals, _ = await _walk(api, ("branch", "NCB"), order, add_members)
    originals = crowd["PEK01"] + crowd["TVS01"]
    assert totals[:3] == [57, 57, 57] and set(totals[3:]) == {60}
    assert len(_ids(nodes)) == len(set(_ids(nodes)))  # no duplicate
    assert set(_ids(originals)) <= set(_ids(nodes))  # no gap
    # Exactly the added members that sort after the last row seen before they came.
    key = _sort_key(order)
    later = {m["id"] for m in added if key(m) > key(seen_before[0])}
    assert set(_ids(nodes)) - set(_ids(originals)) == later
    assert _ids(nodes[30:]) == _ids(sorted(nodes[30:], key=key))
    if order == "TIER_DESC_NAME":
        assert later == {added[1]["id"]}  # Zzz only: Aaa and the new PLATINUM sort before the cursor
    if order == "ENROLLED_AT_DESC":
        assert later == set()  # newest first: every new member sorts before the cursor


def _forge(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


BAD_CURSORS = {
    "not base64 JSON": ("TIER_DESC_NAME", "garbage"),
    "a JSON object": ("TIER_DESC_NAME", _forge({"a": 1, "b": 2})),
    "another ordering's cursor": ("CARD_NUMBER", _forge(["TIER_DESC_NAME", [0, "Li", "An", 1]])),
    "another list's cursor": ("TIER_DESC_NAME", _forge(["ledger", [5]])),
    "wrong key length": ("TIER_DESC_NAME", _forge(["TIER_DESC_NAME", [0, "Li"]])),
    "text where the tier goes": ("TIER_DESC_NAME", _forge(["TIER_DESC_NAME", ["x", "Li", "An", 1]])),
    "nulls in the key": ("TIER_DESC_NAME", _forge(["TIER_DESC_NAME", [0, None, None, "a"]])),
    "an id beyond the column": ("TIER_DESC_NAME", _forge(["TIER_DESC_NAME", [0, "Li", "An", 2**40]])),
    "a number for a card": ("CARD_NUMBER", _forge(["CARD_NUMBER", [5]])),
    "not a date": ("ENROLLED_AT_DESC", _forge(["ENROLLED_AT_DESC", ["yesterday", 1]])),
    "a date without offset": ("ENROLLED_AT_DESC", _forge(["ENROLLED_AT_DESC", ["2026-01-01T00:00:00", 1]])),
}


@pytest.mark.parametrize("case", list(BAD_CURSORS))
async def test_a_bad_cursor_is_invalid(api, case):
    order, cursor = BAD_CURSORS[case]
    await enroll(api)
    result = await api.gql(PAGE, {"first": 10, "after": cursor, "orderBy": order}, as_=("admin",))
    assert error_codes(result) == ["INVALID"]
    assert "cursor" in result["errors"][0]["message"]
