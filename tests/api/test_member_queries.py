"""Reads: me, member, members (filters, totalCount, first), branches, office, tierCounts."""

from __future__ import annotations

import pytest

from tests.api.conftest import as_member, data, enroll, error_codes, set_tier

MEMBERS = """query($filter: MemberFilter, $orderBy: MemberOrder, $first: Int) {
  members(filter: $filter, orderBy: $orderBy, first: $first) {
    totalCount edges { node { familyName givenName } } pageInfo { hasNextPage } } }"""

MEMBER = "query($id: ID, $card: String) { member(id: $id, cardNumber: $card) { id cardNumber familyName } }"

# name: (office, tier); the order members(orderBy: TIER_DESC_NAME) gives them in.
PEOPLE = {
    "Wang Min": ("PVG01", "PLATINUM"),
    "Wang Fang": ("PEK01", "GOLD"),
    "Li Na": ("PEK01", "SILVER"),
    "Wang Lei": ("PEK01", "STANDARD"),
    "Zhang Wei": ("TVS01", "STANDARD"),
}


@pytest.fixture
async def world(api) -> dict[str, dict]:
    """Five members in three offices of two branches (NCB: PEK01, TVS01; ECB: PVG01),
    enrolled in reverse of the default order."""
    people = {}
    for name in reversed(PEOPLE):
        office, tier = PEOPLE[name]
        family, given = name.split()
        people[name] = await enroll(api, office, familyName=family, givenName=given)
        if tier != "STANDARD":
            await set_tier(api, people[name], tier)
    return people


async def _names(api, as_=("admin",), **variables) -> tuple[int, list[str]]:
    """totalCount and the names of the first page."""
    result = data(await api.gql(MEMBERS, variables, as_=as_))["members"]
    return result["totalCount"], [f"{e['node']['familyName']} {e['node']['givenName']}" for e in result["edges"]]


# ---- me and member ---------------------------------------------------------------


async def test_me_is_the_member_behind_the_token(api, world):
    me = world["Li Na"]
    result = data(await api.gql("{ me { id cardNumber tier office { code } } }", as_=as_member(me)))
    assert result["me"] == {"id": me["id"], "cardNumber": me["cardNumber"], "tier": "SILVER", "office": {"code": "PEK01"}}


async def test_a_member_token_of_nobody_is_forbidden(api, world):
    # A well-signed token whose sub names no member is refused (issue 11), not answered as null.
    result = await api.gql("{ me { id } }", as_=("member", None, "999999"))
    assert error_codes(result) == ["FORBIDDEN"]
    assert "names no current member" in result["errors"][0]["message"]


async def test_member_by_id_and_by_card_number(api, world):
    wang = world["Wang Fang"]
    expected = {"id": wang["id"], "cardNumber": wang["cardNumber"], "familyName": "Wang"}
    assert data(await api.gql(MEMBER, {"id": wang["id"]}, as_=("admin",)))["member"] == expected
    assert data(await api.gql(MEMBER, {"card": wang["cardNumber"]}, as_=("admin",)))["member"] == expected
    assert data(await api.gql(MEMBER, {"card": f" {wang['cardNumber'].lower()} "}, as_=("admin",)))["member"] == expected


async def test_member_is_null_when_unknown(api, world):
    from members.cards import card_number

    taken = {m["cardNumber"] for m in world.values()}
    unknown = next(card_number(serial) for serial in range(10_000_000, 10_000_100) if card_number(serial) not in taken)
    for variables in ({"id": "999999"}, {"id": "not-a-number"}, {"card": unknown}):
        assert data(await api.gql(MEMBER, variables, as_=("admin",)))["member"] is None


@pytest.mark.parametrize(
    "variables",
    [{"card": "CA12345678"}, {"card": "CA123456789X"}, {"card": "XX123456789"}, {}, {"id": "1", "card": "CA100000008"}],
    ids=["short", "long", "prefix", "neither", "both"],
)
async def test_member_with_malformed_arguments_is_invalid(api, world, variables):
    result = await api.gql(MEMBER, variables, as_=("admin",))
    assert error_codes(result) == ["INVALID"]


async def test_a_card_failing_its_check_digit_is_invalid_not_null(api, world):
    card = world["Wang Fang"]["cardNumber"]
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    result = await api.gql(MEMBER, {"card": wrong}, as_=("admin",))
    assert error_codes(result) == ["INVALID"]
    assert "check digit" in result["errors"][0]["message"]


@pytest.mark.parametrize("as_", [("partner", "HOTEL1"), ("airline",)])
async def test_partner_and_airline_read_card_names_and_tier_only(api, world, as_):
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    wang = world["Wang Min"]
    query = "query($card: String) { member(cardNumber: $card) { cardNumber familyName givenName tier } }"
    result = data(await api.gql(query, {"card": wang["cardNumber"]}, as_=as_))
    assert result["member"] == {"cardNumber": wang["cardNumber"], "familyName": "Wang", "givenName": "Min", "tier": "PLATINUM"}
    for field in ("phone", "email", "status", "redeemableMiles", "office { code }", "address { city }", "regionHistory { reason }"):
        query = "query($card: String) { member(cardNumber: $card) { cardNumber %s } }" % field
        assert error_codes(await api.gql(query, {"card": wang["cardNumber"]}, as_=as_)) == ["FORBIDDEN"], field


@pytest.mark.parametrize("as_", [("partner", "HOTEL1"), ("airline",)])
async def test_partner_and_airline_may_not_look_up_by_id(api, world, as_):
    """Ids are sequential; card numbers are not guessable. Looking members up by id
    would let a partner or the airline list every member's name."""
    from members.partners import add_partner

    await add_partner("HOTEL1", "Hotel One")
    result = await api.gql(MEMBER, {"id": world["Wang Min"]["id"]}, as_=as_)
    assert error_codes(result) == ["FORBIDDEN"]
    assert result["data"] == {"member": None}


# ---- members ----------------------------------------------------------------------


async def test_admin_lists_everybody_in_tier_then_name_order(api, world):
    assert await _names(api) == (5, list(PEOPLE))


FILTERS = {
    "office": ({"officeCode": "PEK01"}, ["Wang Fang", "Li Na", "Wang Lei"]),
    "branch": ({"branchCode": "NCB"}, ["Wang Fang", "Li Na", "Wang Lei", "Zhang Wei"]),
    "VIP tiers": ({"tiers": ["SILVER", "GOLD", "PLATINUM"]}, ["Wang Min", "Wang Fang", "Li Na"]),
    "one tier": ({"tiers": ["STANDARD"]}, ["Wang Lei", "Zhang Wei"]),
    "no tiers": ({"tiers": []}, []),
    "family name prefix": ({"search": "Wang"}, ["Wang Min", "Wang Fang", "Wang Lei"]),
    "prefix in any case": ({"search": "wa"}, ["Wang Min", "Wang Fang", "Wang Lei"]),
    "given name prefix": ({"search": "Le"}, ["Wang Lei"]),
    "a prefix, not a substring": ({"search": "ang"}, []),
    "office, tiers and search together": ({"officeCode": "PEK01", "tiers": ["SILVER", "GOLD"], "search": "Li"}, ["Li Na"]),
}


@pytest.mark.parametrize("case", list(FILTERS))
async def test_filters(api, world, case):
    member_filter, names = FILTERS[case]
    assert await _names(api, filter=member_filter) == (len(names), names)


async def test_search_by_card_number_is_exact(api, world):
    card = world["Zhang Wei"]["cardNumber"]
    assert await _names(api, filter={"search": card}) == (1, ["Zhang Wei"])
    assert await _names(api, filter={"search": card.lower()}) == (1, ["Zhang Wei"])
    assert await _names(api, filter={"search": card[:-1]}) == (0, [])  # no card prefix search


async def test_empty_search_is_invalid(api, world):
    assert error_codes(await api.gql(MEMBERS, {"filter": {"search": "  "}}, as_=("admin",))) == ["INVALID"]


SCOPED = {
    # as_, filter -> names, or the error code
    "office: its members": (("office", "PEK01"), None, ["Wang Fang", "Li Na", "Wang Lei"]),
    "office: its own office named": (("office", "PEK01"), {"officeCode": "PEK01"}, ["Wang Fang", "Li Na", "Wang Lei"]),
    "office: another office": (("office", "PEK01"), {"officeCode": "TVS01"}, "FORBIDDEN"),
    "office: its own branch is wider": (("office", "PEK01"), {"branchCode": "NCB"}, "FORBIDDEN"),
    "office: an unknown office": (("office", "PEK01"), {"officeCode": "ZZZ99"}, "FORBIDDEN"),
    "branch: its members": (("branch", "NCB"), None, ["Wang Fang", "Li Na", "Wang Lei", "Zhang Wei"]),
    "branch: its own branch named": (("branch", "NCB"), {"branchCode": "NCB"}, ["Wang Fang", "Li Na", "Wang Lei", "Zhang Wei"]),
    "branch: an office of it": (("branch", "NCB"), {"officeCode": "TVS01"}, ["Zhang Wei"]),
    "branch: an office of another branch": (("branch", "NCB"), {"officeCode": "PVG01"}, "FORBIDDEN"),
    "branch: another branch": (("branch", "NCB"), {"branchCode": "ECB"}, "FORBIDDEN"),
    "admin: an unknown office": (("admin",), {"officeCode": "ZZZ99"}, "INVALID"),
    "admin: an unknown branch": (("admin",), {"branchCode": "ZZZ"}, "INVALID"),
}


@pytest.mark.parametrize("case", list(SCOPED))
async def test_scope_of_members(api, world, case):
    as_, member_filter, expected = SCOPED[case]
    if isinstance(expected, str):
        assert error_codes(await api.gql(MEMBERS, {"filter": member_filter}, as_=as_)) == [expected]
    else:
        assert await _names(api, as_, filter=member_filter) == (len(expected), expected)


async def test_first_is_at_most_100(api, world):
    for first in (101, 1000, -1):
        result = await api.gql(MEMBERS, {"first": first}, as_=("admin",))
        assert error_codes(result) == ["INVALID"], first
        assert "between 0 and 100" in result["errors"][0]["message"]
    assert await _names(api, first=100) == (5, list(PEOPLE))


async def test_first_limits_the_page_not_the_total(api, world):
    page = data(await api.gql(MEMBERS, {"first": 2}, as_=("admin",)))["members"]
    assert (page["totalCount"], len(page["edges"]), page["pageInfo"]["hasNextPage"]) == (5, 2, True)
    assert await _names(api, first=0) == (5, [])


async def test_other_orders(api, world):
    by_card = sorted(world.values(), key=lambda m: m["cardNumber"])
    assert (await _names(api, orderBy="CARD_NUMBER"))[1] == [f"{m['familyName']} {m['givenName']}" for m in by_card]
    # Enrolled in reverse of PEOPLE: newest first is PEOPLE's order.
    assert (await _names(api, orderBy="ENROLLED_AT_DESC"))[1] == list(PEOPLE)


# ---- branches and offices -----------------------------------------------------------

BRANCHES = "{ branches { code name offices { code } } }"


async def test_admin_sees_six_branches_and_142_offices(api):
    branches = data(await api.gql(BRANCHES, as_=("admin",)))["branches"]
    assert [b["code"] for b in branches] == ["ECB", "INB", "NCB", "NWB", "SCB", "SWB"]
    assert {b["code"]: len(b["offices"]) for b in branches} == {"ECB": 24, "INB": 26, "NCB": 24, "NWB": 26, "SCB": 24, "SWB": 18}
    assert all(b["name"] for b in branches)


async def test_branch_and_office_staff_see_their_own(api):
    (branch,) = data(await api.gql(BRANCHES, as_=("branch", "NCB")))["branches"]
    assert (branch["code"], len(branch["offices"])) == ("NCB", 24)
    (branch,) = data(await api.gql(BRANCHES, as_=("office", "TVS01")))["branches"]
    assert (branch["code"], branch["offices"]) == ("NCB", [{"code": "TVS01"}])


OFFICE = "query($code: String!) { office(code: $code) { code name city province country branch { code } } }"


async def test_office_by_code(api):
    office = data(await api.gql(OFFICE, {"code": "pek01"}, as_=("admin",)))["office"]
    assert {k: v for k, v in office.items() if k != "name"} == {
        "code": "PEK01", "city": "Beijing", "province": "Beijing", "country": "CN", "branch": {"code": "NCB"},
    }
    assert office["name"]
    tokyo = data(await api.gql(OFFICE, {"code": "TYO01"}, as_=("admin",)))["office"]
    assert (tokyo["city"], tokyo["province"], tokyo["country"], tokyo["branch"]) == ("Tokyo", None, "JP", {"code": "INB"})


@pytest.mark.parametrize(
    ("as_", "code", "visible"),
    [
        (("admin",), "ZZZ99", False),
        (("office", "PEK01"), "PEK01", True),
        (("office", "PEK01"), "TVS01", False),
        (("branch", "NCB"), "TVS01", True),
        (("branch", "NCB"), "PVG01", False),
    ],
)
async def test_office_outside_scope_or_unknown_is_null(api, as_, code, visible):
    office = data(await api.gql(OFFICE, {"code": code}, as_=as_))["office"]
    assert (office is not None) == visible
    if visible:
        assert office["code"] == code


# ---- tier counts ---------------------------------------------------------------------

COUNTS = "{ standard silver gold platinum }"


def _counts(standard=0, silver=0, gold=0, platinum=0) -> dict:
    return {"standard": standard, "silver": silver, "gold": gold, "platinum": platinum}


@pytest.mark.parametrize(
    ("as_", "arguments", "expected"),
    [
        (("admin",), "", _counts(2, 1, 1, 1)),
        (("admin",), '(officeCode: "PEK01")', _counts(1, 1, 1, 0)),
        (("admin",), '(branchCode: "NCB")', _counts(2, 1, 1, 0)),
        (("admin",), '(branchCode: "ECB")', _counts(platinum=1)),
        (("admin",), '(officeCode: "TYO01")', _counts()),
        (("office", "PEK01"), "", _counts(1, 1, 1, 0)),
        (("office", "TVS01"), "", _counts(standard=1)),
        (("branch", "NCB"), "", _counts(2, 1, 1, 0)),
        (("branch", "NCB"), '(officeCode: "TVS01")', _counts(standard=1)),
        (("branch", "ECB"), "", _counts(platinum=1)),
    ],
)
async def test_tier_counts(api, world, as_, arguments, expected):
    assert data(await api.gql("{ tierCounts%s %s }" % (arguments, COUNTS), as_=as_))["tierCounts"] == expected


@pytest.mark.parametrize(
    ("as_", "arguments"),
    [(("office", "PEK01"), '(officeCode: "TVS01")'), (("office", "PEK01"), '(branchCode: "NCB")'), (("branch", "NCB"), '(branchCode: "ECB")')],
)
async def test_tier_counts_outside_scope_are_forbidden(api, world, as_, arguments):
    assert error_codes(await api.gql("{ tierCounts%s %s }" % (arguments, COUNTS), as_=as_)) == ["FORBIDDEN"]


async def test_office_and_branch_tier_counts_agree_with_the_list(api, world):
    query = '{ office(code: "PEK01") { tierCounts %s } branches { code tierCounts %s } }' % (COUNTS, COUNTS)
    result = data(await api.gql(query, as_=("admin",)))
    assert result["office"]["tierCounts"] == _counts(1, 1, 1, 0)
    by_branch = {b["code"]: b["tierCounts"] for b in result["branches"]}
    assert by_branch["NCB"] == _counts(2, 1, 1, 0)
    assert by_branch["ECB"] == _counts(platinum=1)
    assert sum(sum(c.values()) for c in by_branch.values()) == 5


async def test_office_staff_count_only_their_office_within_their_branch(api, world):
    query = "{ branches { tierCounts %s } }" % COUNTS
    assert data(await api.gql(query, as_=("office", "PEK01")))["branches"] == [{"tierCounts": _counts(1, 1, 1, 0)}]
